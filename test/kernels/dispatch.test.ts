import { describe, it, expect, beforeAll } from 'vitest';
import type { Runtime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import { buildDispatch, combine, combineBackward, disposeDispatch, gatherRows, gatherRowsBackward, type DispatchPlan } from '../../src/kernels/dispatch.ts';
import { routerTopK } from '../../src/kernels/router.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import {
  combineBackwardRef,
  combineRef,
  dispatchRef,
  finiteDiff,
  gatherBackwardRef,
  gatherRef,
  topkIndices,
  type DispatchRef,
} from '../reference/moe-ref.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await testRuntime();
});

/** k distinct experts per token, drawn from `allowed` (a partial Fisher-Yates shuffle). */
function randomIdx(rng: Rng, N: number, k: number, allowed: number[]): number[] {
  const idx: number[] = [];
  for (let t = 0; t < N; t++) {
    const a = [...allowed];
    for (let j = 0; j < k; j++) {
      const s = j + rng.int(a.length - j);
      [a[j], a[s]] = [a[s]!, a[j]!];
      idx.push(a[j]!);
    }
  }
  return idx;
}

async function checkPlan(plan: DispatchPlan, ref: DispatchRef, seed: number): Promise<void> {
  const m = `(seed ${seed})`;
  expect(Array.from(await plan.counts.read()), `counts ${m}`).toEqual(ref.counts);
  expect(Array.from(await plan.offsets.read()), `offsets ${m}`).toEqual(ref.offsets);
  expect(Array.from(await plan.pos.read()), `pos ${m}`).toEqual(ref.pos);
  expect(Array.from(await plan.src.read()), `src ${m}`).toEqual(ref.src);
  expect(Array.from(await plan.rowPair.read()), `rowPair ${m}`).toEqual(ref.rowPair);
  expect(Array.from(await plan.dropped.read()), `dropped ${m}`).toEqual([ref.dropped]);
}

function upIdx(idx: number[], N: number, k: number): Tensor {
  return rt.upload(Uint32Array.from(idx), [N, k], 'u32', 'idx');
}

describe('dispatch permutation', () => {
  const cases: [number, number, number][] = [
    [1, 4, 2],
    [7, 8, 2],
    [130, 5, 2],
    [1000, 8, 2],
    [1000, 5, 1],
    [8200, 64, 4], // more than 128 chunks, 64 experts: the full scan width
  ];
  for (const [N, E, k] of cases) {
    it(`matches the reference: N=${N} E=${E} k=${k}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const idx = randomIdx(rng, N, k, Array.from({ length: E }, (_, e) => e));
      const ti = upIdx(idx, N, k);
      const plan = buildDispatch(ti, E);
      await checkPlan(plan, dispatchRef(idx, N, E, k), seed);
      disposeDispatch(plan);
      ti.dispose();
    });
  }

  it('handles all tokens routed to one expert and experts with no tokens', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 130;
    const E = 8;
    const k = 2;
    // Slot 0 is always expert 5; slot 1 is 2 or 6: experts 0, 1, 3, 4, 7 receive nothing.
    const idx: number[] = [];
    for (let t = 0; t < N; t++) idx.push(5, rng.next() < 0.5 ? 2 : 6);
    const ti = upIdx(idx, N, k);
    const plan = buildDispatch(ti, E);
    const ref = dispatchRef(idx, N, E, k);
    expect(ref.counts[5]).toBe(N);
    expect(ref.counts[0]).toBe(0);
    await checkPlan(plan, ref, seed);
    disposeDispatch(plan);
    ti.dispose();
  });

  it('drops pairs past capacity in token order and counts them', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (const [N, E, k, cf] of [
      [130, 4, 2, 1.0],
      [1000, 5, 2, 1.25],
      [7, 8, 2, 0.5],
      [200, 8, 1, 2.0],
    ] as [number, number, number, number][]) {
      // Skewed routing: experts 0 and 1 take most tokens, so capacity bites.
      const all = Array.from({ length: E }, (_, e) => e);
      const idx: number[] = [];
      for (let t = 0; t < N; t++) idx.push(...randomIdx(rng, 1, k, rng.next() < 0.7 ? [0, 1] : all));
      const C = Math.ceil((cf * N * k) / E);
      const ref = dispatchRef(idx, N, E, k, C);
      expect(ref.dropped, `case N=${N} should drop something (seed ${seed})`).toBeGreaterThan(0);
      const ti = upIdx(idx, N, k);
      const plan = buildDispatch(ti, E, { capacityFactor: cf });
      expect(plan.capacity).toBe(C);
      await checkPlan(plan, ref, seed);
      disposeDispatch(plan);
      ti.dispose();
    }
  });

  it('consumes router indices directly (router -> dispatch on the GPU, one submit)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 130;
    const E = 5;
    const k = 2;
    const logits = toF32(rng.normalArray(N * E));
    const tl = rt.upload(Float32Array.from(logits), [N, E]);
    const submits = rt.recorder.submits;
    const r = routerTopK(tl, { k });
    const plan = buildDispatch(r.idx, E);
    expect(rt.recorder.submits).toBe(submits); // nothing forced a submit
    await checkPlan(plan, dispatchRef(topkIndices(logits, N, E, k), N, E, k), seed);
    disposeDispatch(plan);
    for (const t of [tl, r.probs, r.idx, r.weights]) t.dispose();
  });
});

// Gather copies rows exactly. d_ys is one f32 product per element: 1e-6 per element. Combine and
// gather-backward sum <= k terms that may cancel: 1e-6 relative to the largest output.
// d_w is a length-d f32 dot product: 1e-5 relative to the largest.
const EXACT = { rtol: 0 };
const PRODUCT_TOL = { rtol: 1e-6, atol: 1e-30 };
const SUM_TOL = { rtol: 1e-6, relativeToMax: true };
const DOT_TOL = { rtol: 1e-5, relativeToMax: true };

describe('gather and combine', () => {
  for (const [N, E, k, d, cf] of [
    [7, 4, 2, 5, undefined],
    [130, 5, 2, 33, undefined],
    [130, 8, 2, 17, 1.0],
    [1, 8, 2, 3, undefined],
    // d % 4 == 0 takes the vec4 path
    [130, 5, 2, 12, undefined],
    [33, 8, 2, 8, 1.0],
  ] as [number, number, number, number, number | undefined][]) {
    it(`forward and backward: N=${N} E=${E} k=${k} d=${d} capacityFactor=${cf ?? 'none'}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      // Bias toward expert 0 so the capacity case really drops.
      const idx: number[] = [];
      for (let t = 0; t < N; t++) idx.push(...randomIdx(rng, 1, k, rng.next() < 0.6 ? [0, 1 + rng.int(E - 1)] : Array.from({ length: E }, (_, e) => e)));
      const C = cf === undefined ? Infinity : Math.ceil((cf * N * k) / E);
      const ref = dispatchRef(idx, N, E, k, C);
      if (cf !== undefined) expect(ref.dropped, `seed ${seed}`).toBeGreaterThan(0);
      const x = toF32(rng.normalArray(N * d));
      const ys = toF32(rng.normalArray(N * k * d));
      const w = toF32(rng.uniformArray(N * k, 0, 1));
      const dy = toF32(rng.normalArray(N * d));
      const dxs = toF32(rng.normalArray(N * k * d));

      const ti = upIdx(idx, N, k);
      const plan = buildDispatch(ti, E, cf === undefined ? {} : { capacityFactor: cf });
      const tx = rt.upload(Float32Array.from(x), [N, d]);
      const tys = rt.upload(Float32Array.from(ys), [N * k, d]);
      const tw = rt.upload(Float32Array.from(w), [N, k]);
      const tdy = rt.upload(Float32Array.from(dy), [N, d]);
      const tdxs = rt.upload(Float32Array.from(dxs), [N * k, d]);

      const xs = gatherRows(tx, plan);
      const dx = gatherRowsBackward(tdxs, plan);
      const y = combine(tys, tw, plan);
      const { dys, dWeights } = combineBackward(tdy, tys, tw, plan);

      expectClose(await xs.readF32(), gatherRef(x, ref, d), { ...EXACT, what: 'gather xs', seed });
      expectClose(await dx.readF32(), gatherBackwardRef(dxs, ref, N, k, d), { ...SUM_TOL, what: 'gather backward dx', seed });
      expectClose(await y.readF32(), combineRef(ys, w, ref, N, k, d), { ...SUM_TOL, what: 'combine y', seed });
      const cb = combineBackwardRef(dy, ys, w, ref, N, k, d);
      expectClose(await dys.readF32(), cb.dys, { ...PRODUCT_TOL, what: 'combine d_ys', seed });
      expectClose(await dWeights.readF32(), cb.dw, { ...DOT_TOL, what: 'combine d_w', seed });

      disposeDispatch(plan);
      for (const t of [ti, tx, tys, tw, tdy, tdxs, xs, dx, y, dys, dWeights]) t.dispose();
    });
  }

  it('combine and gather backward match finite differences (tiny shape, vec4 rows, with a dropped pair)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 3;
    const E = 3;
    const k = 2;
    const d = 4;
    const idx = [0, 1, 0, 2, 0, 1]; // capacity 2 (cf 1.0): token 2's pair to expert 0 is dropped
    const ref = dispatchRef(idx, N, E, k, 2);
    expect(ref.dropped).toBe(1);
    const ys = toF32(rng.normalArray(N * k * d));
    const w = toF32(rng.uniformArray(N * k, 0, 1));
    const x = toF32(rng.normalArray(N * d));
    const R = toF32(rng.normalArray(N * d)); // projection for combine's scalar
    const Rs = toF32(rng.normalArray(N * k * d)); // projection for gather's scalar

    const dotR = (a: Float64Array, b: ArrayLike<number>) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    const fdYs = finiteDiff((v) => dotR(combineRef(v, w, ref, N, k, d), R), Float64Array.from(ys));
    const fdW = finiteDiff((v) => dotR(combineRef(ys, v, ref, N, k, d), R), Float64Array.from(w));
    const fdX = finiteDiff((v) => dotR(gatherRef(v, ref, d), Rs), Float64Array.from(x));

    const ti = upIdx(idx, N, k);
    const plan = buildDispatch(ti, E, { capacityFactor: 1.0 });
    const tys = rt.upload(Float32Array.from(ys), [N * k, d]);
    const tw = rt.upload(Float32Array.from(w), [N, k]);
    const tR = rt.upload(Float32Array.from(R), [N, d]);
    const tRs = rt.upload(Float32Array.from(Rs), [N * k, d]);
    const { dys, dWeights } = combineBackward(tR, tys, tw, plan);
    const dx = gatherRowsBackward(tRs, plan);
    // FD in float64 (step 1e-6) of a function linear in each input vs f32 gradients.
    const tol = { rtol: 1e-5, relativeToMax: true, seed };
    expectClose(await dys.readF32(), fdYs, { ...tol, what: 'd_ys vs FD' });
    expectClose(await dWeights.readF32(), fdW, { ...tol, what: 'd_w vs FD' });
    expectClose(await dx.readF32(), fdX, { ...tol, what: 'dx vs FD' });
    disposeDispatch(plan);
    for (const t of [ti, tys, tw, tR, tRs, dys, dWeights, dx]) t.dispose();
  });
});
