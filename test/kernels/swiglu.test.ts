import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import { swiglu, swigluBackward, swigluFused, swigluFusedBackward } from '../../src/kernels/swiglu.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose, expectFinite } from '../reference/compare.ts';
import { sigmoidRef, splitGateUp, swigluGradRef, swigluRef } from '../reference/swiglu-ref.ts';
import { numericGrad } from '../reference/ops.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

function disposeAll(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Gates over the whole useful range: mostly N(0, 3), with some saturated values (±20, ±100). */
function gates(rng: Rng, n: number): Float64Array {
  return toF32(Array.from({ length: n }, () => (rng.next() < 0.1 ? (rng.next() < 0.5 ? -1 : 1) * (rng.next() < 0.5 ? 20 : 100) : 3 * rng.normal())));
}

/** Interleave gate [R, H] and up [R, H] into the [R, 2H] layout (gate first in each row). */
function concatGateUp(g: ArrayLike<number>, u: ArrayLike<number>, R: number, H: number): Float64Array {
  const gu = new Float64Array(R * 2 * H);
  for (let r = 0; r < R; r++)
    for (let c = 0; c < H; c++) {
      gu[r * 2 * H + c] = g[r * H + c]!;
      gu[r * 2 * H + H + c] = u[r * H + c]!;
    }
  return gu;
}

// Tolerance for f32: exp is accurate to a few ulp for moderate |x| (WGSL allows 3 + 2|x| ulp, so
// ~1e-5 relative at |x| = 100 where sigmoid is ~e^-100 anyway), then three products: rtol 2e-5
// per element; atol covers results that underflow to (sub)normals near silu(-100) ~ 4e-42.
const F32_TOL = { rtol: 2e-5, atol: 1e-30 };

/**
 * dg = dh·u·s·(1 + g(1 - s)) cancels near g ≈ -1.28, where silu' has its root: there the error is
 * absolute, ~ulp of the uncancelled terms. So dg's error is measured against that magnitude,
 * |dh·u|·s·(1 + |g|(1 - s)) (>= |dg|), instead of |dg| itself: both sides are divided by it.
 */
function expectDgClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  g: ArrayLike<number>,
  u: ArrayLike<number>,
  dh: ArrayLike<number>,
  what: string,
  seed?: number,
): void {
  const scale = Float64Array.from(g, (x, i) => {
    const s = sigmoidRef(x);
    return Math.abs(dh[i]! * u[i]!) * s * (1 + Math.abs(x) * (1 - s)) + 1e-30;
  });
  const a = Float64Array.from(actual, (v, i) => v / scale[i]!);
  const e = Float64Array.from(expected, (v, i) => v / scale[i]!);
  // |e| <= 1 after scaling, so atol 1 makes this |a - e| / scale <= ~rtol.
  expectClose(a, e, { rtol: F32_TOL.rtol, atol: 1, what, seed });
}

describe('swiglu (separate gate and up)', () => {
  for (const shape of [
    [1, 1],
    [7, 33],
    [130, 67],
    [3, 5, 7],
  ]) {
    it(`forward and backward match float64, shape [${shape.join(', ')}]`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const n = numel(shape);
      const g = gates(rng, n);
      const u = toF32(rng.normalArray(n, 2));
      const dh = toF32(rng.normalArray(n));
      const tg = rt.upload(Float32Array.from(g), shape);
      const tu = rt.upload(Float32Array.from(u), shape);
      const tdh = rt.upload(Float32Array.from(dh), shape);
      const h = swiglu(tg, tu);
      const { dg, du } = swigluBackward(tg, tu, tdh);
      expect(h.shape).toEqual(shape);
      const ref = swigluGradRef(g, u, dh);
      expectClose(await h.readF32(), swigluRef(g, u), { ...F32_TOL, what: 'swiglu h', seed });
      expectDgClose(await dg.readF32(), ref.dg, g, u, dh, 'swiglu dg', seed);
      expectClose(await du.readF32(), ref.du, { ...F32_TOL, what: 'swiglu du', seed });
      disposeAll(tg, tu, tdh, h, dg, du);
    });
  }

  it('is finite and saturates correctly at huge |g| (no exp overflow)', async () => {
    const g = [-3e38, -1e30, -1e4, -100, -88.8, -20, -1e-30, 0, 1e-30, 20, 88.8, 100, 1e4, 1e30];
    const n = g.length;
    const tg = rt.upload(g, [1, n]);
    const tu = rt.upload(new Array(n).fill(1), [1, n]);
    const tdh = rt.upload(new Array(n).fill(1), [1, n]);
    const h = await swiglu(tg, tu).readF32();
    const { dg, du } = swigluBackward(tg, tu, tdh);
    const dgv = await dg.readF32();
    const duv = await du.readF32();
    expectFinite(h, 'silu at huge |g|');
    expectFinite(dgv, "silu' at huge |g|");
    expectFinite(duv, 'du at huge |g|');
    const at = (x: number) => g.indexOf(x);
    expect(Math.abs(h[at(-100)]!)).toBeLessThan(1e-40); // silu(-100) = -3.7e-42
    expect(h[at(100)]).toBe(100);
    expect(h[at(1e4)]).toBe(1e4);
    expect(Math.abs(h[at(-1e4)]!)).toBe(0);
    expect(dgv[at(100)]).toBe(1); // silu'(100) = 1 - 3.7e-42 rounds to 1
    expect(Math.abs(dgv[at(-100)]!)).toBeLessThan(1e-39);
    expect(dgv[at(0)]).toBe(0.5);
    expectClose(h, toF32(swigluRef(Float32Array.from(g), new Float64Array(n).fill(1))), { ...F32_TOL, what: 'silu extremes' });
    disposeAll(tg, tu, tdh, dg, du);
  });

  it('backward agrees with central finite differences (tiny shape)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const shape = [2, 3];
    const g = toF32(rng.normalArray(6, 2));
    const u = toF32(rng.normalArray(6, 2));
    const w = toF32(rng.normalArray(6)); // L = Σ w ⊙ h, so dL/dh = w
    const tg = rt.upload(Float32Array.from(g), shape);
    const tu = rt.upload(Float32Array.from(u), shape);
    const tw = rt.upload(Float32Array.from(w), shape);
    const { dg, du } = swigluBackward(tg, tu, tw);
    const L = (gg: ArrayLike<number>, uu: ArrayLike<number>) => swigluRef(gg, uu).reduce((a, h, i) => a + w[i]! * h, 0);
    // FD truncation ~1e-10 in float64; the GPU gradient is f32: 1e-5 of the max entry.
    expectClose(
      await dg.readF32(),
      numericGrad((x) => L(x, u), g),
      { rtol: 1e-5, relativeToMax: true, what: 'swiglu FD dg', seed },
    );
    expectClose(
      await du.readF32(),
      numericGrad((x) => L(g, x), u),
      { rtol: 1e-5, relativeToMax: true, what: 'swiglu FD du', seed },
    );
    disposeAll(tg, tu, tw, dg, du);
  });
});

describe('swiglu (one [R, 2H] gate|up tensor)', () => {
  for (const [R, H] of [
    [1, 1],
    [7, 33],
    [130, 67],
  ] as const) {
    it(`forward and backward match float64, R=${R} H=${H}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const g = gates(rng, R * H);
      const u = toF32(rng.normalArray(R * H, 2));
      const dh = toF32(rng.normalArray(R * H));
      const gu = concatGateUp(g, u, R, H);
      const tgu = rt.upload(Float32Array.from(gu), [R, 2 * H]);
      const tdh = rt.upload(Float32Array.from(dh), [R, H]);
      const h = swigluFused(tgu);
      expect(h.shape).toEqual([R, H]);
      const dgu = swigluFusedBackward(tgu, tdh);
      expect(dgu.shape).toEqual([R, 2 * H]);
      const ref = swigluGradRef(g, u, dh);
      expectClose(await h.readF32(), swigluRef(g, u), { ...F32_TOL, what: 'fused h', seed });
      const { g: dgGpu, u: duGpu } = splitGateUp(await dgu.readF32(), R, H);
      expectDgClose(dgGpu, ref.dg, g, u, dh, 'fused dgate', seed);
      expectClose(duGpu, ref.du, { ...F32_TOL, what: 'fused dup', seed });
      disposeAll(tgu, tdh, h, dgu);
    });
  }

  it('backward agrees with central finite differences (tiny shape)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const R = 2;
    const H = 3;
    const gu = toF32(rng.normalArray(R * 2 * H, 2));
    const w = toF32(rng.normalArray(R * H));
    const tgu = rt.upload(Float32Array.from(gu), [R, 2 * H]);
    const tw = rt.upload(Float32Array.from(w), [R, H]);
    const dgu = swigluFusedBackward(tgu, tw);
    const L = (x: ArrayLike<number>) => {
      const { g, u } = splitGateUp(x, R, H);
      return swigluRef(g, u).reduce((a, h, i) => a + w[i]! * h, 0);
    };
    // As above: float64 FD vs the f32 gradient, 1e-5 of the max entry.
    expectClose(await dgu.readF32(), numericGrad(L, gu), { rtol: 1e-5, relativeToMax: true, what: 'fused FD dgu', seed });
    disposeAll(tgu, tw, dgu);
  });

  it('rejects an odd last dimension', () => {
    const t = rt.empty([2, 5]);
    expect(() => swigluFused(t)).toThrow(/even/);
    t.dispose();
  });
});

describe('swiglu in f16 storage', () => {
  it('matches float64 within f16 rounding, both layouts', async (ctx) => {
    skipWithoutF16(rt, ctx);
    const seed = freshSeed();
    const rng = new Rng(seed);
    const R = 9;
    const H = 37;
    const n = R * H;
    const toF16 = (a: ArrayLike<number>) => Float64Array.from(a, (v) => f16BitsToF32(f32ToF16Bits(v)));
    const g = toF16(rng.normalArray(n, 3));
    const u = toF16(rng.normalArray(n, 2));
    const dh = toF16(rng.normalArray(n));
    const tg = rt.upload(Float32Array.from(g), [R, H], 'f16');
    const tu = rt.upload(Float32Array.from(u), [R, H], 'f16');
    const tdh = rt.upload(Float32Array.from(dh), [R, H], 'f16');
    const tgu = rt.upload(Float32Array.from(concatGateUp(g, u, R, H)), [R, 2 * H], 'f16');
    const h = swiglu(tg, tu);
    const { dg, du } = swigluBackward(tg, tu, tdh);
    const hf = swigluFused(tgu);
    const dgu = swigluFusedBackward(tgu, tdh);
    expect(h.dtype).toBe('f16');
    const ref = swigluGradRef(g, u, dh);
    // f32 math, one rounding to f16 at the store: 2^-11 relative; atol for f16 subnormals (< 6e-5).
    const tol = { rtol: 1e-3, atol: 1e-4, seed };
    expectClose(await h.read(), swigluRef(g, u), { ...tol, what: 'f16 h' });
    expectClose(await dg.read(), ref.dg, { ...tol, what: 'f16 dg' });
    expectClose(await du.read(), ref.du, { ...tol, what: 'f16 du' });
    expectClose(await hf.read(), swigluRef(g, u), { ...tol, what: 'f16 fused h' });
    expectClose(await dgu.read(), concatGateUp(ref.dg, ref.du, R, H), { ...tol, what: 'f16 fused dgu' });
    disposeAll(tg, tu, tdh, tgu, h, dg, du, hf, dgu);
  });
});
