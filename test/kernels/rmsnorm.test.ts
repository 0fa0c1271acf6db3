import { describe, it, beforeAll, expect } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { rmsnorm, rmsnormBackward } from '../../src/kernels/rmsnorm.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { projectedNumericGrad as finiteDiffGrad } from '../reference/ops.ts';
import { rmsnormBackwardRef, rmsnormRef } from '../reference/rmsnorm-ref.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);

describe('rmsnorm', () => {
  // d not a multiple of the workgroup (64), N odd; 1 row and 1 column as edge cases;
  // N=300 makes dw use several chunks (chunk = 32 rows).
  const shapes: [number, number][] = [
    [1, 1],
    [1, 7],
    [3, 64],
    [5, 65],
    [300, 33],
    [17, 384],
    [4, 1000],
  ];

  for (const [N, d] of shapes) {
    it(`forward and backward match float64, N=${N} d=${d}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      // Rows with very different scales: rstd must be per row.
      const x = toF32(rng.normalArray(N * d).map((v, i) => v * 10 ** ((Math.floor(i / d) % 5) - 2)));
      const w = toF32(rng.uniformArray(d, 0.5, 1.5));
      const dy = toF32(rng.normalArray(N * d));
      const eps = 1e-6;
      const ref = rmsnormRef(x, w, N, d, eps);
      const bref = rmsnormBackwardRef(dy, x, w, N, d, eps);

      const tx = rt.upload(f32(x), [N, d]);
      const tw = rt.upload(f32(w), [d]);
      const tdy = rt.upload(f32(dy), [N, d]);
      const { y, rstd } = rmsnorm(tx, tw, eps);
      const { dx, dw } = rmsnormBackward(tdy, tx, tw, rstd);

      // d <= 1000 f32 products summed, then sqrt/divide: a few ulp; 2e-6 leaves room, per element.
      expectClose(await y.readF32(), ref.y, { rtol: 2e-6, atol: 1e-30, what: 'y', seed });
      expectClose(await rstd.readF32(), ref.rstd, { rtol: 2e-6, what: 'rstd', seed });
      // dx = r*w*dy - (r^3/d)*x*sum(w*dy*x) cancels (completely as d -> 1: dx ~ eps/x^2), so the
      // error is measured against the size of the first term, r*max|w*dy|, per row (rows differ
      // by 1e4 in scale): 1e-5 for d <= 1000 f32 sums.
      const gdx = await dx.readF32();
      for (let n = 0; n < N; n++) {
        let term = 0;
        for (let c = 0; c < d; c++) term = Math.max(term, ref.rstd[n]! * Math.abs(w[c]! * dy[n * d + c]!));
        expectClose(gdx.subarray(n * d, (n + 1) * d), bref.dx.subarray(n * d, (n + 1) * d), {
          rtol: 1e-5,
          relativeToMax: true,
          atol: term,
          what: `dx row ${n}`,
          seed,
        });
      }
      // dw sums N <= 300 f32 terms in chunks: 1e-5 relative to max.
      expectClose(await dw.readF32(), bref.dw, { rtol: 1e-5, relativeToMax: true, what: 'dw', seed });
      for (const t of [tx, tw, tdy, y, rstd, dx, dw]) t.dispose();
    });
  }

  it('uses eps: an all-zero row gives y = 0 and rstd = 1/sqrt(eps)', async () => {
    const d = 5;
    const tx = rt.upload(new Float32Array(2 * d).fill(0).fill(1, d), [2, d]);
    const tw = rt.upload(new Float32Array(d).fill(2), [d]);
    const { y, rstd } = rmsnorm(tx, tw, 1e-2);
    const r = await rstd.readF32();
    expectClose(r, [1 / Math.sqrt(1e-2), 1 / Math.sqrt(1 + 1e-2)], { rtol: 1e-6, what: 'rstd' });
    const yy = await y.readF32();
    expect(Array.from(yy.subarray(0, d))).toEqual([0, 0, 0, 0, 0]);
    for (const t of [tx, tw, y, rstd]) t.dispose();
  });

  it('backward agrees with central finite differences of the float64 reference', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 3;
    const d = 5;
    const eps = 1e-6;
    const x = toF32(rng.normalArray(N * d));
    const w = toF32(rng.uniformArray(d, 0.5, 1.5));
    const g = toF32(rng.normalArray(N * d));
    const fdx = finiteDiffGrad((xx) => rmsnormRef(xx, w, N, d, eps).y, x, g);
    const fdw = finiteDiffGrad((ww) => rmsnormRef(x, ww, N, d, eps).y, w, g);

    const tx = rt.upload(f32(x), [N, d]);
    const tw = rt.upload(f32(w), [d]);
    const tg = rt.upload(f32(g), [N, d]);
    const { y, rstd } = rmsnorm(tx, tw, eps);
    const { dx, dw } = rmsnormBackward(tg, tx, tw, rstd);
    // Central differences with h=1e-6 in float64 are good to ~1e-9; the GPU side is f32: 1e-5.
    expectClose(await dx.readF32(), fdx, { rtol: 1e-5, relativeToMax: true, what: 'dx vs finite differences', seed });
    expectClose(await dw.readF32(), fdw, { rtol: 1e-5, relativeToMax: true, what: 'dw vs finite differences', seed });
    for (const t of [tx, tw, tg, y, rstd, dx, dw]) t.dispose();
  });
});

/** Round to the nearest f16 on the host: the values an f16 tensor holds, for the float64 references. */
const toF16 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, (v) => f16BitsToF32(f32ToF16Bits(v)));

// f16 storage: inputs are rounded to f16 on the host before both the upload and the float64
// reference, so the only f16 error is the final rounding of an f16 output, at most 2^-11 ≈ 4.9e-4
// of the value (round to nearest); rtol 1e-3 allows twice that plus the f32 math. Outputs that fall
// in f16's subnormal range (< 2^-14) are rounded to an absolute 2^-25 instead: atol 2^-14 covers
// them (1e-3 * 2^-14 > 2^-25). f32 outputs (rstd, dw, and y/dx when x is f32) keep the f32 bounds.
const F16_OUT = { rtol: 1e-3, atol: 2 ** -14 };

describe('rmsnorm with f16 storage (f32 math)', () => {
  type Case = { x: 'f32' | 'f16'; dy: 'f32' | 'f16' };
  // x f16 with dy f16 or f32, and x f32 with dy f16; each through both row-kernel forms (serial is
  // what a CPU adapter picks, parallel what a GPU picks), plus the f32 parallel form, which the
  // f32 tests above do not reach on a CPU adapter. d not a multiple of the workgroup (64); N=300
  // makes dw use several chunks.
  const cases: Case[] = [
    { x: 'f16', dy: 'f16' },
    { x: 'f16', dy: 'f32' },
    { x: 'f32', dy: 'f16' },
    { x: 'f32', dy: 'f32' },
  ];
  const shapes: [number, number][] = [
    [1, 7],
    [5, 65],
    [300, 33],
    [4, 1000],
  ];
  for (const rows of ['serial', 'parallel'] as const)
    for (const c of cases) {
      if (rows === 'serial' && c.x === 'f32' && c.dy === 'f32') continue; // the f32 tests above
      for (const [N, d] of shapes) {
        it(`${rows} rows, x ${c.x}, dy ${c.dy}, N=${N} d=${d}`, async (ctx) => {
          if (c.x === 'f16' || c.dy === 'f16') skipWithoutF16(rt, ctx);
          const seed = freshSeed();
          const rng = new Rng(seed);
          const round = { f32: toF32, f16: toF16 };
          // Rows with scales 1e-2..1e2, as in the f32 test (|x| stays far below f16's 65504).
          const x = round[c.x](rng.normalArray(N * d).map((v, i) => v * 10 ** ((Math.floor(i / d) % 5) - 2)));
          const w = toF32(rng.uniformArray(d, 0.5, 1.5));
          const dy = round[c.dy](rng.normalArray(N * d));
          const eps = 1e-6;
          const ref = rmsnormRef(x, w, N, d, eps);
          const bref = rmsnormBackwardRef(dy, x, w, N, d, eps);

          const tx = rt.upload(f32(x), [N, d], c.x);
          const tw = rt.upload(f32(w), [d]);
          const tdy = rt.upload(f32(dy), [N, d], c.dy);
          // The row kernel is forced through the policy (the one override mechanism).
          const { y, rstd, dx, dw } = rt.withPolicy({ rmsnorm: { rows } }, () => {
            const f = rmsnorm(tx, tw, eps);
            return { ...f, ...rmsnormBackward(tdy, tx, tw, f.rstd) };
          });
          expect([y.dtype, rstd.dtype, dx.dtype, dw.dtype]).toEqual([c.x, 'f32', c.x, 'f32']);

          const f16x = c.x === 'f16';
          expectClose(await y.readF32(), ref.y, { ...(f16x ? F16_OUT : { rtol: 2e-6, atol: 1e-30 }), what: 'y', seed });
          expectClose(await rstd.readF32(), ref.rstd, { rtol: 2e-6, what: 'rstd', seed });
          // dx cancels (see the f32 test): its f32 error is bounded by 1e-5 of s = max|dx| + r*max|w*dy|
          // per row. An f16 dx adds its rounding, 2^-11 of |dx| (or 2^-25 if subnormal):
          // |err| <= 1e-3 * (|dx| + 0.01 s + 2^-14).
          const gdx = await dx.readF32();
          for (let n = 0; n < N; n++) {
            const [got, want] = [gdx.subarray(n * d, (n + 1) * d), bref.dx.subarray(n * d, (n + 1) * d)];
            let term = 0;
            let maxDx = 0;
            for (let j = 0; j < d; j++) {
              term = Math.max(term, ref.rstd[n]! * Math.abs(w[j]! * dy[n * d + j]!));
              maxDx = Math.max(maxDx, Math.abs(want[j]!));
            }
            const what = `dx row ${n}`;
            if (f16x) expectClose(got, want, { rtol: 1e-3, atol: 0.01 * (maxDx + term) + 2 ** -14, what, seed });
            else expectClose(got, want, { rtol: 1e-5, relativeToMax: true, atol: term, what, seed });
          }
          // dw is f32 from the same (rounded) inputs: the f32 bound.
          expectClose(await dw.readF32(), bref.dw, { rtol: 1e-5, relativeToMax: true, what: 'dw', seed });
          for (const t of [tx, tw, tdy, y, rstd, dx, dw]) t.dispose();
        });
      }
    }

  it('rejects f16 without shader-f16, and a non-f32 weight', () => {
    const x = rt.upload(new Float32Array(6), [2, 3], 'f16');
    const w = rt.upload(new Float32Array(3), [3]);
    const w16 = rt.upload(new Float32Array(3), [3], 'f16');
    const had = rt.caps.f16;
    try {
      rt.caps.f16 = false;
      expect(() => rmsnorm(x, w)).toThrow(/shader-f16/);
    } finally {
      rt.caps.f16 = had;
    }
    // f32 x, so the weight check is what fails on a device without shader-f16 too.
    const x32 = rt.upload(new Float32Array(6), [2, 3]);
    expect(() => rmsnorm(x32, w16)).toThrow(/weight .* must be f32/);
    for (const t of [x, x32, w, w16]) t.dispose();
  });
});
