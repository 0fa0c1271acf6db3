import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import {
  chooseChunkTokens,
  combine,
  combineBackward,
  disposeDispatch,
  gatherRows,
  gatherRowsBackward,
  routeAndDispatch,
  type DispatchPlan,
} from '../../src/kernels/dispatch.ts';
import { routerTopK } from '../support/router-topk.ts';
import { buildDispatch } from '../support/dispatch-indices.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { combineBackwardRef, combineRef, dispatchRef, gatherBackwardRef, gatherRef, type DispatchRef } from '../reference/dispatch-ref.ts';
import { numericGrad as finiteDiff } from '../reference/ops.ts';
import { routerRef, topkIndices } from '../reference/router-ref.ts';

let rt: DawnRuntime;
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
      const idx = randomIdx(
        rng,
        N,
        k,
        Array.from({ length: E }, (_, e) => e),
      );
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

describe('routeAndDispatch (router + plan in 2 dispatches)', () => {
  // f32 softmax of O(1) logits, as in router.test.ts.
  const PROB_TOL = { rtol: 2e-6, atol: 1e-9 };

  async function readOut(r: { probs: Tensor; idx: Tensor; weights: Tensor }) {
    return { probs: await r.probs.readF32(), idx: Array.from(await r.idx.read()), weights: await r.weights.readF32() };
  }

  function disposeRouted(r: { probs: Tensor; idx: Tensor; weights: Tensor; plan: DispatchPlan }): void {
    for (const t of [r.probs, r.idx, r.weights]) t.dispose();
    disposeDispatch(r.plan);
  }

  /**
   * The fused path against float64 references (router) and the host permutation of the reference
   * idx, and bit for bit against routerTopK + buildDispatch on the same logits.
   */
  async function checkFused(
    logits: Float64Array,
    N: number,
    E: number,
    k: number,
    o: { renormalize?: boolean; capacityFactor?: number; chunkTokens?: number },
    seed: number,
  ) {
    const m = `(seed ${seed}, N=${N} E=${E} k=${k} ${JSON.stringify(o)})`;
    const tl = rt.upload(Float32Array.from(logits), [N, E]);
    // A chunk size is forced through the policy (the one override mechanism).
    const { chunkTokens, ...opts } = o;
    const fused = rt.withPolicy(chunkTokens === undefined ? {} : { dispatch: { chunkTokens } }, () => routeAndDispatch(tl, { k, numExperts: E, ...opts }));
    const ref = routerRef(logits, N, E, k, o.renormalize ?? false);
    const got = await readOut(fused);
    expect(got.idx, `idx ${m}`).toEqual(ref.idx);
    expectClose(got.probs, ref.probs, { ...PROB_TOL, what: `probs ${m}`, seed });
    expectClose(got.weights, ref.weights, { ...PROB_TOL, what: `weights ${m}`, seed });
    const C = o.capacityFactor === undefined ? Infinity : Math.ceil((o.capacityFactor * N * k) / E);
    const pref = dispatchRef(ref.idx, N, E, k, C);
    expect(fused.plan.capacity).toBe(o.capacityFactor === undefined ? null : C);
    await checkPlan(fused.plan, pref, seed);
    // The unfused path on the same logits: identical bits.
    const old = routerTopK(tl, { k, renormalize: o.renormalize });
    const oldPlan = buildDispatch(old.idx, E, o.capacityFactor === undefined ? {} : { capacityFactor: o.capacityFactor });
    const want = await readOut(old);
    expect(Array.from(got.probs), `probs vs routerTopK ${m}`).toEqual(Array.from(want.probs));
    expect(Array.from(got.weights), `weights vs routerTopK ${m}`).toEqual(Array.from(want.weights));
    for (const key of ['counts', 'offsets', 'pos', 'src', 'rowPair', 'dropped'] as const) {
      expect(Array.from(await fused.plan[key].read()), `${key} vs buildDispatch ${m}`).toEqual(Array.from(await oldPlan[key].read()));
    }
    disposeRouted(fused);
    disposeRouted({ ...old, plan: oldPlan });
    tl.dispose();
    return pref;
  }

  // N not a multiple of any workgroup or chunk size; N = 3000 spans many chunks and workgroups.
  const cases: [number, number, number, boolean][] = [
    [1, 4, 2, false],
    [7, 8, 1, false],
    [130, 13, 2, true],
    [1000, 4, 1, false],
    [3000, 8, 2, false],
    [3000, 13, 1, true],
    [3000, 4, 2, false],
    [2049, 64, 4, false], // every expert bit, both halves of the picked mask
  ];
  for (const [N, E, k, renorm] of cases) {
    it(`matches the references: N=${N} E=${E} k=${k} renormalize=${renorm}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      await checkFused(toF32(rng.normalArray(N * E, 2)), N, E, k, { renormalize: renorm }, seed);
    });
  }

  it('gives the same plan for any chunk size (1 token per chunk to one chunk for all)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 3000;
    const E = 8;
    const k = 2;
    const logits = toF32(rng.normalArray(N * E, 2));
    for (const chunkTokens of [1, 3, 64, 257, chooseChunkTokens(rt.policy, N, E, k), N - 1, N, 5000]) await checkFused(logits, N, E, k, { chunkTokens }, seed);
  });

  it('breaks ties toward the lower expert index, as routerTopK', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    // Logits from {0, 1, 2}: most rows have ties inside the top k and at the cut.
    for (const [N, E, k] of [
      [1001, 8, 2],
      [300, 13, 1],
      [65, 4, 2],
    ] as [number, number, number][]) {
      const logits = Float64Array.from({ length: N * E }, () => rng.int(3));
      await checkFused(logits, N, E, k, { chunkTokens: 1 + rng.int(40) }, seed);
      await checkFused(logits, N, E, k, {}, seed);
    }
  });

  it('drops pairs past capacity in token order and counts them', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (const [N, E, k, cf, chunkTokens] of [
      [130, 4, 2, 1.0, undefined],
      [3000, 8, 2, 1.25, undefined],
      [3000, 13, 1, 1.0, 7],
      [7, 8, 2, 0.5, undefined],
      [1000, 5, 2, 1.0, 1],
    ] as [number, number, number, number, number | undefined][]) {
      // Experts 0 and 1 favoured, so capacity bites.
      const logits = toF32(rng.normalArray(N * E, 1));
      for (let t = 0; t < N; t++) {
        logits[t * E] += 1.5;
        logits[t * E + 1] += 1.0;
      }
      const pref = await checkFused(logits, N, E, k, { capacityFactor: cf, ...(chunkTokens ? { chunkTokens } : {}) }, seed);
      expect(pref.dropped, `N=${N} should drop something (seed ${seed})`).toBeGreaterThan(0);
    }
  });

  it('all tokens to one expert, and empty experts', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 1500;
    const E = 8;
    const logits = toF32(rng.normalArray(N * E, 0.1));
    for (let t = 0; t < N; t++) logits[t * E + 5] += 10; // slot 0 is always expert 5
    const pref = await checkFused(logits, N, E, 2, { chunkTokens: 100 }, seed);
    expect(pref.counts[5]).toBe(N);
    await checkFused(logits, N, E, 1, {}, seed); // k = 1: one expert takes everything
  });

  it('is 2 dispatches and forces no submit; N = 0 still writes counts and offsets', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const N = 300;
    const E = 8;
    const logits = toF32(rng.normalArray(N * E));
    const tl = rt.upload(Float32Array.from(logits), [N, E]);
    const poison = rt.poison;
    rt.poison = false; // poisoning fills are dispatches too
    const d0 = rt.recorder.dispatches;
    const s0 = rt.recorder.submits;
    const r = routeAndDispatch(tl, { k: 2, capacityFactor: 1.0 });
    expect(rt.recorder.dispatches - d0).toBe(2);
    expect(rt.recorder.submits).toBe(s0);
    rt.poison = poison;
    await checkPlan(r.plan, dispatchRef(topkIndices(logits, N, E, 2), N, E, 2, Math.ceil((N * 2) / E)), seed);
    disposeRouted(r);
    tl.dispose();

    const empty = rt.upload(new Float32Array(0), [0, E]);
    const z = routeAndDispatch(empty, { k: 2 });
    await checkPlan(z.plan, dispatchRef([], 0, E, 2), seed);
    disposeRouted(z);
    empty.dispose();
  });

  it('rejects bad options', () => {
    const tl = rt.upload(new Float32Array(4 * 8), [4, 8]);
    expect(() => routeAndDispatch(tl, { k: 2, numExperts: 4 })).toThrow(/numExperts/);
    expect(() => routeAndDispatch(tl, { k: 9 })).toThrow(/k=9/);
    expect(() => routeAndDispatch(tl, { capacityFactor: 0 })).toThrow(/capacityFactor/);
    expect(() => rt.withPolicy({ dispatch: { chunkTokens: 0 } }, () => routeAndDispatch(tl))).toThrow(/chunkTokens/);
    tl.dispose();
  });
});

// Gather copies rows exactly. d_ys is one f32 product per element: 1e-6 per element. Combine and
// gather-backward sum <= k terms that may cancel: 1e-6 relative to the largest output.
// d_w is a length-d f32 dot product: 1e-5 relative to the largest.
const EXACT = { rtol: 0 };
const PRODUCT_TOL = { rtol: 1e-6, atol: 1e-30 };
const SUM_TOL = { rtol: 1e-6, relativeToMax: true };
const DOT_TOL = { rtol: 1e-5, relativeToMax: true };

/**
 * A token-movement case: top-k picks biased toward expert 0 (so capacity cases really drop), the
 * reference plan, and row data (x, ys, dy, dxs rounded by `round`; routing weights f32).
 */
function rowCase(N: number, E: number, k: number, d: number, cf: number | undefined, round: (a: Float64Array) => Float64Array) {
  const seed = freshSeed();
  const rng = new Rng(seed);
  const idx: number[] = [];
  for (let t = 0; t < N; t++) idx.push(...randomIdx(rng, 1, k, rng.next() < 0.6 ? [0, 1 + rng.int(E - 1)] : Array.from({ length: E }, (_, e) => e)));
  const C = cf === undefined ? Infinity : Math.ceil((cf * N * k) / E);
  const ref = dispatchRef(idx, N, E, k, C);
  if (cf !== undefined) expect(ref.dropped, `seed ${seed}`).toBeGreaterThan(0);
  const x = round(rng.normalArray(N * d));
  const ys = round(rng.normalArray(N * k * d));
  const w = toF32(rng.uniformArray(N * k, 0, 1));
  const dy = round(rng.normalArray(N * d));
  const dxs = round(rng.normalArray(N * k * d));
  return { seed, idx, ref, x, ys, w, dy, dxs };
}

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
      const { seed, idx, ref, x, ys, w, dy, dxs } = rowCase(N, E, k, d, cf, toF32);

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

describe('gather and combine in f16 storage (f32 math)', () => {
  const toF16 = (a: ArrayLike<number>) => Float64Array.from(a, (v) => f16BitsToF32(f32ToF16Bits(v)));
  // One rounding to f16 at the store after f32 math: 2^-11 relative; atol for f16 subnormals and
  // for sums that cancel to ~0 (their f32 error is far below it).
  const F16_TOL = { rtol: 1e-3, atol: 1e-4 };

  for (const [N, E, k, d, cf] of [
    [130, 5, 2, 33, undefined], // scalar rows
    [130, 8, 2, 12, 1.0], // vec4 rows, with drops
    [7, 4, 1, 5, undefined],
    [33, 8, 2, 8, undefined],
  ] as [number, number, number, number, number | undefined][]) {
    it(`N=${N} E=${E} k=${k} d=${d} capacityFactor=${cf ?? 'none'}`, async (ctx) => {
      skipWithoutF16(rt, ctx);
      // Values representable in f16, so the references see what the GPU stores.
      const { seed, idx, ref, x, ys, w, dy, dxs } = rowCase(N, E, k, d, cf, toF16);

      const ti = upIdx(idx, N, k);
      const plan = buildDispatch(ti, E, cf === undefined ? {} : { capacityFactor: cf });
      const up = (a: Float64Array, rows: number, dtype: 'f32' | 'f16') => rt.upload(Float32Array.from(a), [rows, d], dtype);
      const tx = up(x, N, 'f16');
      const tys = up(ys, N * k, 'f16');
      const tw = rt.upload(Float32Array.from(w), [N, k]);
      const tdy = up(dy, N, 'f16');
      const tdxs = up(dxs, N * k, 'f16');
      const tys32 = up(ys, N * k, 'f32');
      const tdy32 = up(dy, N, 'f32');

      const xs = gatherRows(tx, plan);
      const dx = gatherRowsBackward(tdxs, plan);
      const y = combine(tys, tw, plan);
      expect([xs.dtype, dx.dtype, y.dtype]).toEqual(['f16', 'f16', 'f16']);
      expectClose(await xs.read(), gatherRef(x, ref, d), { ...EXACT, what: 'f16 gather xs', seed });
      expectClose(await dx.read(), gatherBackwardRef(dxs, ref, N, k, d), { ...F16_TOL, what: 'f16 gather backward dx', seed });
      expectClose(await y.read(), combineRef(ys, w, ref, N, k, d), { ...F16_TOL, what: 'f16 combine y', seed });

      // combineBackward: dy and ys independently f32 or f16; d_ys takes ys's dtype, d_w stays f32.
      const cb = combineBackwardRef(dy, ys, w, ref, N, k, d);
      const owned: Tensor[] = [];
      for (const [tdyX, tysX] of [
        [tdy, tys],
        [tdy32, tys],
        [tdy, tys32],
      ] as [Tensor, Tensor][]) {
        const what = `dy ${tdyX.dtype}, ys ${tysX.dtype}`;
        const { dys, dWeights } = combineBackward(tdyX, tysX, tw, plan);
        owned.push(dys, dWeights);
        expect(dys.dtype, what).toBe(tysX.dtype);
        expect(dWeights.dtype, what).toBe('f32');
        expectClose(await dys.read(), cb.dys, { ...(tysX.dtype === 'f16' ? F16_TOL : PRODUCT_TOL), what: `d_ys (${what})`, seed });
        expectClose(await dWeights.read(), cb.dw, { ...DOT_TOL, what: `d_w (${what})`, seed });
      }

      disposeDispatch(plan);
      for (const t of [ti, tx, tys, tw, tdy, tdxs, tys32, tdy32, xs, dx, y, ...owned]) t.dispose();
    });
  }

  it('rejects f16 without shader-f16, and non-f32 weights', () => {
    const N = 4;
    const k = 2;
    const ti = upIdx([0, 1, 1, 0, 0, 1, 1, 0], N, k);
    const plan = buildDispatch(ti, 2);
    const x16 = rt.upload(new Float32Array(N * 4), [N, 4], 'f16');
    const ys16 = rt.upload(new Float32Array(N * k * 4), [N * k, 4], 'f16');
    const dy32 = rt.upload(new Float32Array(N * 4), [N, 4]);
    const w16 = rt.upload(new Float32Array(N * k), [N, k], 'f16');
    const w32 = rt.upload(new Float32Array(N * k), [N, k]);
    const xi = rt.upload(new Int32Array(N * 4), [N, 4], 'i32');
    const had = rt.caps.f16;
    try {
      rt.caps.f16 = false;
      expect(() => gatherRows(x16, plan)).toThrow(/shader-f16/);
      expect(() => gatherRowsBackward(ys16, plan)).toThrow(/shader-f16/);
      expect(() => combine(ys16, w32, plan)).toThrow(/shader-f16/);
      expect(() => combineBackward(dy32, ys16, w32, plan)).toThrow(/shader-f16/);
    } finally {
      rt.caps.f16 = had;
    }
    // f32 rows, so the weights check is what fails on a device without shader-f16 too.
    const ys32 = rt.upload(new Float32Array(N * k * 4), [N * k, 4]);
    expect(() => combine(ys32, w16, plan)).toThrow(/weights .* must be f32/);
    expect(() => gatherRows(xi, plan)).toThrow(/f32 or f16/);
    disposeDispatch(plan);
    for (const t of [ti, x16, ys16, ys32, dy32, w16, w32, xi]) t.dispose();
  });
});
