import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { sum, mean, sumAll, sumAxis, sumSquaresMany, planMany, manyBatch, MANY_CHUNK } from '../../src/kernels/reduce.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { reduceAxis, sumSquares } from '../reference/reduce-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

describe('sum / mean over an axis', () => {
  // [outer, n, inner] views: row sums (inner 1), column sums (outer 1), middle axis, tiny,
  // lengths that force the chunked two-pass path (n large with few outputs), and >= 4096
  // outputs (the barrier-free thread-per-output kernel).
  const cases: [number, number, number][] = [
    [1, 1, 1],
    [1, 40_000, 5],
    [4099, 3, 1],
    [2, 5, 2100],
    [7, 33, 1],
    [3, 130, 5],
    [1, 9000, 3],
    [2, 1000, 70],
    [1, 20_000, 1],
    [130, 7, 17],
    [300, 5, 1],
  ];
  for (const [outer, n, inner] of cases) {
    it(`[${outer}, ${n}, ${inner}] over the middle axis`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const x = toF32(rng.uniformArray(outer * n * inner, -2, 2));
      const t = rt.upload(Float32Array.from(x), [outer, n, inner]);
      const ref = reduceAxis(x, outer, n, inner, (a, v) => a + v, 0);
      const s = sum(t, 1);
      expect(s.shape).toEqual([outer, inner]);
      // n f32 additions of |x| <= 2 in a tree: error ~ log2(n) * 2^-24 * sum|x|; relative to
      // the largest |sum| (which is ~sqrt(n), small vs sum|x| ~ n), so 1e-5 * sqrt(n) bounds it.
      const tol = 1e-6 * Math.sqrt(n) + 1e-6;
      expectClose(await s.readF32(), ref, { rtol: tol, atol: 1e-6, relativeToMax: true, seed, what: 'sum' });
      const m = mean(t, 1, true);
      expect(m.shape).toEqual([outer, 1, inner]);
      expectClose(
        await m.readF32(),
        Float64Array.from(ref, (v) => v / n),
        { rtol: tol, atol: 1e-7, relativeToMax: true, seed, what: 'mean' },
      );
      for (const q of [t, s, m]) q.dispose();
    });
  }

  it('reduces the first and the last axis of a 3-D tensor', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const [A, B, C] = [5, 6, 7];
    const x = toF32(rng.uniformArray(A * B * C));
    const t = rt.upload(Float32Array.from(x), [A, B, C]);
    const s0 = sum(t, 0);
    expect(s0.shape).toEqual([B, C]);
    expectClose(
      await s0.readF32(),
      reduceAxis(x, 1, A, B * C, (a, v) => a + v, 0),
      { rtol: 1e-5, relativeToMax: true, seed, what: 'axis 0' },
    ); // 5 adds
    const s2 = mean(t, -1);
    expect(s2.shape).toEqual([A, B]);
    expectClose(
      await s2.readF32(),
      Float64Array.from(
        reduceAxis(x, A * B, C, 1, (a, v) => a + v, 0),
        (v) => v / C,
      ),
      { rtol: 1e-5, relativeToMax: true, seed, what: 'axis -1' },
    );
    for (const q of [t, s0, s2]) q.dispose();
  });

  it('sums a product with a second tensor (broadcast-mul backward)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const [o, n, i] = [3, 301, 9];
    const x = toF32(rng.uniformArray(o * n * i));
    const w = toF32(rng.uniformArray(o * n * i));
    const tx = rt.upload(Float32Array.from(x), [o * n * i]);
    const tw = rt.upload(Float32Array.from(w), [o * n * i]);
    const s = sumAxis(tx, { outer: o, n, inner: i }, { times: tw });
    const ref = reduceAxis(
      Float64Array.from(x, (v, k) => v * w[k]!),
      o,
      n,
      i,
      (a, v) => a + v,
      0,
    );
    expectClose(await s.readF32(), ref, { rtol: 1e-5, relativeToMax: true, seed, what: 'sum x*w' }); // 301 f32 products+adds
    for (const q of [tx, tw, s]) q.dispose();
  });

  it('sumAll of an odd-sized vector with a huge n (multi-pass)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const n = 1_000_003;
    const x = toF32(rng.uniformArray(n, 0, 1));
    const t = rt.upload(Float32Array.from(x), [n]);
    const before = rt.recorder.dispatches;
    const s = sumAll(t);
    // really took the two-pass tree: 2 reductions + 2 NaN-poison fills (one pass would be 1 + 1)
    expect(rt.recorder.dispatches - before).toBeGreaterThanOrEqual(4);
    // Positive values: sum|x| = sum, tree error ~ 20 levels * 6e-8.
    expectClose(await s.readF32(), [x.reduce((a, v) => a + v, 0)], { rtol: 2e-6, seed, what: 'sumAll' });
    t.dispose();
    s.dispose();
  });
});

describe('edge cases', () => {
  it('an empty reduction axis sums to 0 and its mean is NaN', async () => {
    const t = rt.empty([3, 0, 2]);
    const s = sum(t, 1);
    const m = mean(t, 1);
    expect(Array.from(await s.readF32())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(await m.readF32()).every(Number.isNaN)).toBe(true);
    for (const q of [t, s, m]) q.dispose();
  });

  it('reduces f16 input with f32 accumulation', async (ctx) => {
    skipWithoutF16(rt, ctx);
    const seed = freshSeed();
    const rng = new Rng(seed);
    const [o, n] = [5, 3001];
    // f16 values round-trip exactly through upload; the reference sums them in float64
    const t = rt.upload(Float32Array.from(rng.uniformArray(o * n, -2, 2)), [o, n], 'f16');
    const x = await t.read();
    const s = sum(t, 1);
    // 3001 terms accumulated in f32 (not f16: an f16 sum would be off by ~1e-2)
    expectClose(
      await s.readF32(),
      reduceAxis(x, o, n, 1, (a, v) => a + v, 0),
      { rtol: 1e-5, relativeToMax: true, seed, what: 'f16 sum' },
    );
    const ss = sumSquaresMany([t]);
    expectClose(await ss.readF32(), [sumSquares(x)], { rtol: 2e-6, seed, what: 'f16 sum of squares' });
    for (const q of [t, s, ss]) q.dispose();
  });
});

describe('sumSquaresMany', () => {
  it('plans chunks so that every tensor, even an empty one, gets a workgroup', () => {
    const p = planMany([0, 1, MANY_CHUNK, MANY_CHUNK + 1, 5], 2, MANY_CHUNK);
    expect(p.groups.map((g) => [g.start, g.count, g.first, g.total, g.outBase])).toEqual([
      [0, 2, [0, 1], 2, 0],
      [2, 2, [0, 1], 3, 2],
      [4, 1, [0], 1, 5],
    ]);
    expect(p.partials).toBe(6);
  });

  it('matches the float64 sum of squares over 40 tensors of odd sizes', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const sizes = Array.from({ length: 40 }, (_, k) => (k === 7 ? 0 : k === 3 ? 70_001 : 1 + rng.int(3000)));
    const hosts = sizes.map((s) => toF32(rng.normalArray(s, 0.1 + rng.next())));
    const ts = hosts.map((h, k) => rt.upload(Float32Array.from(h), [sizes[k]!]));
    const before = rt.recorder.dispatches;
    const s = sumSquaresMany(ts);
    // 40 tensors: ceil(40 / batch) dispatches (batch = 15 with 16 storage buffers per stage, 7
    // with WebGPU's default 8), then the partial reduction: one pass on the CPU family, up to two
    // on the GPU family (chunked serial below 256 elements, then the scalar pass); +1 NaN-poison
    // fill per new buffer, which only the test runtime records.
    const passes = rt.policy.family === 'cpu' ? 1 : 2;
    const batch = manyBatch(rt);
    expect(batch).toBe(Math.min(15, rt.policy.limits.maxStorageBuffersPerShaderStage - 1));
    expect(rt.recorder.dispatches - before).toBeLessThanOrEqual(Math.ceil(40 / batch) + passes + (1 + passes));
    expect(s.shape).toEqual([1]);
    const ref = hosts.reduce((a, h) => a + sumSquares(h), 0);
    // Squares are positive: relative error of a tree of ~1e5 f32 terms ~ 20 * 6e-8.
    expectClose(await s.readF32(), [ref], { rtol: 3e-6, seed, what: 'sum of squares' });
    for (const t of ts) t.dispose();
    s.dispose();
  });

  it('propagates a NaN or Inf in any tensor', async () => {
    const a = rt.upload([1, 2, 3], [3]);
    const b = rt.upload([1, Infinity, 3], [3]);
    const c = rt.upload([NaN, 0], [2]);
    const s1 = sumSquaresMany([a, b]);
    const s2 = sumSquaresMany([a, c]);
    const s3 = sumSquaresMany([a]);
    expect((await s1.readF32())[0]).toBe(Infinity);
    expect(Number.isNaN((await s2.readF32())[0])).toBe(true);
    expect((await s3.readF32())[0]).toBe(14);
    for (const t of [a, b, c, s1, s2, s3]) t.dispose();
  });
});
