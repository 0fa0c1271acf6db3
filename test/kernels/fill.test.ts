/**
 * Filling a buffer with one 32-bit pattern (src/kernels/fill.ts, shaders/fill.wgsl): constants in
 * every dtype, raw bit patterns, zeros, and the NaN poison of new buffers, against
 * test/reference/fill-ref.ts, at sizes that are not multiples of the 256-word workgroup (f16 with an
 * odd element count shares its last word with padding).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { DType } from '../../src/kernels/tensor.ts';
import { fillWords } from '../../src/kernels/fill.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { fillBitsRef, fillRef, roundF16 } from '../reference/fill-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const SIZES = [1, 7, 33, 130, 257, 1025, 70_001];

describe('fill', () => {
  it('fill and zeros reach every element', async () => {
    const t = rt.empty([3, 333]);
    rt.fill(t, 2.5);
    expect(Array.from(await t.readF32()).every((v) => v === 2.5)).toBe(true);
    const z = rt.zeros([17]);
    expect(Array.from(await z.readF32())).toEqual(new Array(17).fill(0));
    t.dispose();
    z.dispose();
  });

  it('poisons new buffers with NaN when asked (f32)', async () => {
    const t = rt.empty([5]);
    expect(Array.from(await t.readF32()).every(Number.isNaN)).toBe(true);
    t.dispose();
  });

  it('poisons new buffers with NaN when asked (f16)', async (ctx) => {
    skipWithoutF16(rt, ctx);
    const h = rt.empty([7], 'f16');
    expect(Array.from(await h.readF32()).every(Number.isNaN)).toBe(true);
    h.dispose();
  });

  for (const dtype of ['f32', 'f16', 'i32', 'u32'] as const) {
    it(`a constant fills every element of ${dtype} tensors of odd sizes`, async (ctx) => {
      if (dtype === 'f16') skipWithoutF16(rt, ctx);
      const seed = freshSeed();
      const rng = new Rng(seed);
      for (const n of SIZES) {
        // Floats: a random value (f16 rounds it: the reference rounds to nearest even too); ints: signed and large.
        const value = dtype === 'f32' || dtype === 'f16' ? rng.uniform(-100, 100) : dtype === 'i32' ? -1 - rng.int(1 << 30) : 0x80000000 + rng.int(1 << 30);
        const t = rt.empty([n], dtype as DType); // NaN-poisoned first
        rt.fill(t, value);
        const got = await t.read();
        // Exact: a fill writes one bit pattern (the host rounds the value once).
        expectClose(got, fillRef(n, value, dtype), { rtol: 0, seed, what: `${dtype} n=${n} value=${value}` });
        t.dispose();
      }
    });
  }

  it("fillWords (the runtimes' fillBits) writes the raw pattern into every word", async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (const n of SIZES) {
      const bits = rng.int(2 ** 32);
      const t = rt.empty([n], 'u32');
      if (n % 2) fillWords(rt, t, bits);
      else rt.fillBits(t, bits);
      expect(Array.from(await t.read()), `n=${n} bits=${bits} seed=${seed}`).toEqual(Array.from(fillBitsRef(n, bits)));
      t.dispose();
    }
  });

  it('the f16 reference rounds to nearest even, subnormals and overflow included', () => {
    expect([
      roundF16(1 + 2 ** -11),
      roundF16(1 + 3 * 2 ** -11),
      roundF16(65504),
      roundF16(65520),
      roundF16(2 ** -25),
      roundF16(3 * 2 ** -25),
      roundF16(-0.1),
    ]).toEqual([1, 1 + 2 ** -9, 65504, Infinity, 0, 2 ** -23, -0.0999755859375]);
  });
});
