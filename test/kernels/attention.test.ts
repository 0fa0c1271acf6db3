import { describe, it, beforeAll, expect } from 'vitest';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { attention, attentionBackward, attentionTemplate, type AttentionDims } from '../../src/kernels/attention.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { attentionBackwardRef, attentionRef, finiteDiffGrad } from '../reference/attention-ref.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await testRuntime();
});

const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);
const numel = (d: AttentionDims): number => d.B * d.T * d.H * d.hd;

async function runBoth(d: AttentionDims, q: Float64Array, k: Float64Array, v: Float64Array, dO: Float64Array) {
  const shape = [d.B, d.T, d.H * d.hd];
  const [tq, tk, tv, tdo] = [q, k, v, dO].map((a) => rt.upload(f32(a), shape));
  const { o, lse } = attention(tq!, tk!, tv!, d);
  const { dq, dk, dv } = attentionBackward(tdo!, tq!, tk!, tv!, o, lse, d);
  const out = {
    o: await o.readF32(),
    lse: await lse.readF32(),
    dq: await dq.readF32(),
    dk: await dk.readF32(),
    dv: await dv.readF32(),
  };
  for (const t of [tq!, tk!, tv!, tdo!, o, lse, dq, dk, dv]) t.dispose();
  return out;
}

describe('causal attention', () => {
  // T not a multiple of anything (the workgroup is 32 rows), T > 64, hd % 4 != 0 (vec2 path),
  // hd up to 128 and H*hd up to 1024; both code forms (unrolled registers, loops). hd = 64 is run
  // in loop form only: its unrolled pipelines take lavapipe ~30 s to compile (same generator as
  // hd = 32, which is tested unrolled).
  const shapes: AttentionDims[] = [
    { B: 1, T: 1, H: 1, hd: 2 },
    { B: 2, T: 5, H: 3, hd: 4 },
    { B: 1, T: 13, H: 2, hd: 6 },
    { B: 1, T: 13, H: 2, hd: 6, unroll: false },
    { B: 1, T: 70, H: 2, hd: 8 },
    { B: 2, T: 37, H: 2, hd: 32 },
    { B: 1, T: 5, H: 32, hd: 32 },
    { B: 1, T: 70, H: 2, hd: 64, unroll: false },
    { B: 1, T: 9, H: 8, hd: 128 },
  ];

  for (const d of shapes) {
    it(`forward and backward match float64, ${JSON.stringify(d)}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const n = numel(d);
      // std 1.5 q/k give peaked softmax rows (scores up to ~±10): online rescaling is exercised.
      const q = toF32(rng.normalArray(n, 1.5));
      const k = toF32(rng.normalArray(n, 1.5));
      const v = toF32(rng.normalArray(n));
      const dO = toF32(rng.normalArray(n));
      const ref = attentionRef(q, k, v, d);
      const bref = attentionBackwardRef(dO, q, k, v, d);
      const g = await runBoth(d, q, k, v, dO);
      // Scores are hd-term f32 dots (|s| <~ 10, error ~1e-6 absolute), exp amplifies that to ~1e-6
      // relative in P; outputs are convex combinations of v: 2e-5 of max|o|.
      expectClose(g.o, ref.o, { rtol: 2e-5, relativeToMax: true, what: 'o', seed });
      // lse = m + log(l): absolute error ~1e-6 on values of order 1..10.
      expectClose(g.lse, ref.lse, { rtol: 1e-5, atol: 1, what: 'lse', seed });
      // Gradients subtract D from dP (cancellation) and sum up to T terms: 1e-4 of max.
      expectClose(g.dq, bref.dq, { rtol: 1e-4, relativeToMax: true, what: 'dq', seed });
      expectClose(g.dk, bref.dk, { rtol: 1e-4, relativeToMax: true, what: 'dk', seed });
      expectClose(g.dv, bref.dv, { rtol: 1e-4, relativeToMax: true, what: 'dv', seed });
    });
  }

  it('is causal: changing a later key/value leaves earlier outputs unchanged', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const d: AttentionDims = { B: 1, T: 6, H: 2, hd: 4 };
    const n = numel(d);
    const q = toF32(rng.normalArray(n));
    const k = toF32(rng.normalArray(n));
    const v = toF32(rng.normalArray(n));
    const dO = toF32(rng.normalArray(n));
    const a = await runBoth(d, q, k, v, dO);
    const row = d.H * d.hd;
    const k2 = Float64Array.from(k);
    const v2 = Float64Array.from(v);
    for (let c = 4 * row; c < n; c++) {
      k2[c] = Math.fround(k2[c]! + 3);
      v2[c] = Math.fround(v2[c]! - 2);
    }
    const b = await runBoth(d, q, k2, v2, dO);
    expect(Array.from(b.o.subarray(0, 4 * row)), `seed ${seed}`).toEqual(Array.from(a.o.subarray(0, 4 * row)));
    expect(Array.from(b.o.subarray(4 * row))).not.toEqual(Array.from(a.o.subarray(4 * row)));
  });

  it('backward agrees with central finite differences of the float64 reference (B=1,T=3,H=2,hd=4)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const d: AttentionDims = { B: 1, T: 3, H: 2, hd: 4 };
    const n = numel(d);
    const q = toF32(rng.normalArray(n));
    const k = toF32(rng.normalArray(n));
    const v = toF32(rng.normalArray(n));
    const dO = toF32(rng.normalArray(n));
    const fq = finiteDiffGrad((x) => attentionRef(x, k, v, d).o, q, dO);
    const fk = finiteDiffGrad((x) => attentionRef(q, x, v, d).o, k, dO);
    const fv = finiteDiffGrad((x) => attentionRef(q, k, x, d).o, v, dO);
    const g = await runBoth(d, q, k, v, dO);
    // float64 central differences (h=1e-6) are good to ~1e-9; the GPU side is f32: 1e-5 of max.
    expectClose(g.dq, fq, { rtol: 1e-5, relativeToMax: true, what: 'dq vs finite differences', seed });
    expectClose(g.dk, fk, { rtol: 1e-5, relativeToMax: true, what: 'dk vs finite differences', seed });
    expectClose(g.dv, fv, { rtol: 1e-5, relativeToMax: true, what: 'dv vs finite differences', seed });
  });

  it('unrolls up to hd 64 by default and loops above', () => {
    expect(attentionTemplate(32)['FWD_SCORE']).toMatch(/dot\(q7, /);
    expect(attentionTemplate(128)['FWD_SCORE']).toMatch(/for \(var c/);
  });

  it('rejects odd or oversized head dims', () => {
    expect(() => attentionTemplate(5)).toThrow(/even/);
    expect(() => attentionTemplate(130)).toThrow(/even/);
  });
});
