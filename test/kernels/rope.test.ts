import { describe, it, beforeAll, expect } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { rope, ropeBackward, type RopeDims } from '../../src/kernels/rope.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { projectedNumericGrad as finiteDiffGrad } from '../reference/ops.ts';
import { ropeRef } from '../reference/rope-ref.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);
const n = (d: RopeDims): number => d.B * d.T * d.H * d.hd;

describe('rope', () => {
  const shapes: RopeDims[] = [
    { B: 1, T: 1, H: 1, hd: 2 },
    { B: 2, T: 5, H: 3, hd: 4 },
    { B: 1, T: 13, H: 2, hd: 6 },
    { B: 3, T: 37, H: 2, hd: 32 },
    { B: 2, T: 7, H: 12, hd: 32 },
    { B: 1, T: 9, H: 8, hd: 128 },
    { B: 2, T: 11, H: 3, hd: 10, theta: 500000 },
  ];

  for (const d of shapes) {
    it(`forward, backward and round trip match float64, ${JSON.stringify(d)}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const x = toF32(rng.normalArray(n(d)));
      const tx = rt.upload(f32(x), [d.B, d.T, d.H * d.hd]);
      const y = rope(tx, d);
      const back = ropeBackward(y, d);
      const dx = ropeBackward(tx, d);
      // Two f32 products and a sum per element, table values within 1 ulp of float64 trig of
      // the same f32 angles the reference uses: a few ulp of max|x|.
      const tol = { rtol: 1e-6, relativeToMax: true, seed };
      expectClose(await y.readF32(), ropeRef(x, d.B, d.T, d.H, d.hd, d.theta, 1), { ...tol, what: 'rope forward' });
      expectClose(await dx.readF32(), ropeRef(x, d.B, d.T, d.H, d.hd, d.theta, -1), { ...tol, what: 'rope backward' });
      // Forward then backward is the identity: two rotations of f32 data.
      expectClose(await back.readF32(), x, { ...tol, rtol: 2e-6, what: 'rope round trip' });
      for (const t of [tx, y, back, dx]) t.dispose();
    });
  }

  it('uses the rotate_half pairing (i, i + hd/2) and inv_freq = theta^(-2i/hd)', async () => {
    // hd = 4, theta = 100: inv_freq = [1, 0.1]; position 1 rotates pair (x0, x2) by 1 rad and
    // (x1, x3) by 0.1 rad; position 0 is the identity. Written out by hand, independent of ropeRef.
    const x = [1, 2, 3, 4, 5, 6, 7, 8];
    const tx = rt.upload(f32(x), [1, 2, 4]);
    const y = rope(tx, { B: 1, T: 2, H: 1, hd: 4, theta: 100 });
    const a0 = 1;
    const a1 = Math.fround(Math.fround(1 / 10) * 1); // HF keeps inv_freq in float32
    const [p, q, r, s] = [5, 6, 7, 8];
    const expected = [
      1,
      2,
      3,
      4,
      p * Math.cos(a0) - r * Math.sin(a0),
      q * Math.cos(a1) - s * Math.sin(a1),
      r * Math.cos(a0) + p * Math.sin(a0),
      s * Math.cos(a1) + q * Math.sin(a1),
    ];
    expectClose(await y.readF32(), expected, { rtol: 1e-6, relativeToMax: true, what: 'hand-computed rope' });
    tx.dispose();
    y.dispose();
  });

  it('stays accurate at large positions (T = 3000)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const d: RopeDims = { B: 1, T: 3000, H: 1, hd: 8 };
    const x = toF32(rng.normalArray(n(d)));
    const tx = rt.upload(f32(x), [d.T, d.hd]);
    const y = await rope(tx, d).readF32();
    // Against HF's float32 angles: only table rounding, as for small T.
    expectClose(y, ropeRef(x, 1, d.T, 1, d.hd, 10000, 1), { rtol: 1e-6, relativeToMax: true, what: 'rope vs HF f32 angles', seed });
    // Against exact angles: float32 rounding of inv_freq and of t*inv_freq moves the angle by up to
    // ~3e-5 rad at t < 3000 (measured on the reference; HF has the same error): 1e-4 of max|x|.
    expectClose(y, ropeRef(x, 1, d.T, 1, d.hd, 10000, 1, true), { rtol: 1e-4, relativeToMax: true, what: 'rope vs exact angles', seed });
    tx.dispose();
  });

  it('backward agrees with central finite differences of the float64 reference', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const d: RopeDims = { B: 1, T: 3, H: 2, hd: 4 };
    const x = toF32(rng.normalArray(n(d)));
    const g = toF32(rng.normalArray(n(d)));
    const fd = finiteDiffGrad((xx) => ropeRef(xx, d.B, d.T, d.H, d.hd, 10000, 1), x, g);
    const tg = rt.upload(f32(g), [d.B * d.T, d.H * d.hd]);
    const dx = ropeBackward(tg, d);
    // Linear map: central differences are exact to ~1e-9; GPU f32: 1e-6.
    expectClose(await dx.readF32(), fd, { rtol: 1e-6, relativeToMax: true, what: 'rope dx vs finite differences', seed });
    tg.dispose();
    dx.dispose();
  });
});

/** Round to the nearest f16 on the host: the values an f16 tensor holds, for the float64 references. */
const toF16 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, (v) => f16BitsToF32(f32ToF16Bits(v)));

describe('rope with f16 storage (f32 math)', () => {
  // Odd T and H, hd % 4 != 0, the largest head dim; x, y and dx in f16, the table in f32.
  const shapes: RopeDims[] = [
    { B: 1, T: 1, H: 1, hd: 2 },
    { B: 2, T: 5, H: 3, hd: 6 },
    { B: 3, T: 37, H: 2, hd: 32 },
    { B: 1, T: 9, H: 8, hd: 128, theta: 500000 },
  ];

  for (const d of shapes) {
    it(`forward and backward match float64 within f16 rounding, ${JSON.stringify(d)}`, async (ctx) => {
      skipWithoutF16(rt, ctx);
      const seed = freshSeed();
      const rng = new Rng(seed);
      // x rounded on the host to the f16 values the tensor holds; the reference starts from those.
      const x = toF16(rng.normalArray(n(d)));
      const tx = rt.upload(f32(x), [d.B, d.T, d.H * d.hd], 'f16');
      const y = rope(tx, d);
      const dx = ropeBackward(tx, d);
      expect([y.dtype, dx.dtype]).toEqual(['f16', 'f16']);
      const gy = await y.readF32();
      // The f32 bound (1e-6 of max|x|) plus one rounding of each output to f16, 2^-11 ≈ 4.9e-4 of
      // its value: per element |err| <= 1e-3 * (|ref| + 1e-3 max|x|).
      let mx = 0;
      for (const v of x) mx = Math.max(mx, Math.abs(v));
      const tol = { rtol: 1e-3, atol: 1e-3 * mx, seed };
      expectClose(gy, ropeRef(x, d.B, d.T, d.H, d.hd, d.theta, 1), { ...tol, what: 'f16 rope forward' });
      expectClose(await dx.readF32(), ropeRef(x, d.B, d.T, d.H, d.hd, d.theta, -1), { ...tol, what: 'f16 rope backward' });
      // Backward of the f16 y: against the reference rotation of exactly those f16 values. The
      // round trip differs from x by the f16 rounding of y, so it is checked that way instead.
      const back = ropeBackward(y, d);
      expectClose(await back.readF32(), ropeRef(gy, d.B, d.T, d.H, d.hd, d.theta, -1), { ...tol, what: 'f16 rope backward of y' });
      for (const t of [tx, y, dx, back]) t.dispose();
    });
  }

  it('rejects f16 without shader-f16', () => {
    const d: RopeDims = { B: 1, T: 2, H: 1, hd: 4 };
    const x = rt.upload(new Float32Array(8), [1, 2, 4], 'f16');
    const had = rt.caps.f16;
    try {
      rt.caps.f16 = false;
      expect(() => rope(x, d)).toThrow(/shader-f16/);
      expect(() => ropeBackward(x, d)).toThrow(/shader-f16/);
    } finally {
      rt.caps.f16 = had;
    }
    x.dispose();
  });
});
