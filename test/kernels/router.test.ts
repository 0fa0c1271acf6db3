import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { routerTopKBackward, routerTopKCounts } from '../../src/kernels/router.ts';
import { routerTopK } from '../support/router-topk.ts';
import { testRuntime } from '../reference/gpu.ts';
import { toF32, seeded } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { numericGrad as finiteDiff } from '../reference/ops.ts';
import { routerBackwardRef, routerRef, routerWeights, topkIndices } from '../reference/router-ref.ts';
import { softmaxRows } from '../reference/ops.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

// f32 softmax of O(1) logits: exp and one division per element, a sum of <= 64 terms;
// a few ulp per element, so 2e-6 relative with a 1e-9 floor for tiny probabilities.
const PROB_TOL = { rtol: 2e-6, atol: 1e-9 };
// Backward: sums of <= 64 products of f32 values, compared relative to the largest gradient.
const GRAD_TOL = { rtol: 1e-5, relativeToMax: true };

async function run(logits: Float64Array, N: number, E: number, k: number, renormalize: boolean) {
  const tl = rt.upload(Float32Array.from(logits), [N, E]);
  const out = routerTopK(tl, { k, renormalize });
  const res = {
    probs: await out.probs.readF32(),
    idx: Array.from(await out.idx.read()),
    weights: await out.weights.readF32(),
    tensors: { logits: tl, ...out },
  };
  return res;
}

function disposeAll(ts: Record<string, { dispose(): void }>): void {
  for (const t of Object.values(ts)) t.dispose();
}

describe('router top-k forward', () => {
  const cases: [number, number, number, boolean][] = [
    [1, 4, 2, false],
    [7, 8, 2, false],
    [130, 5, 2, true],
    [1000, 8, 2, false],
    [130, 4, 1, false],
    [7, 5, 5, true],
    [33, 64, 4, false],
    [1000, 5, 3, true],
  ];
  for (const [N, E, k, renorm] of cases) {
    it(`N=${N} E=${E} k=${k} renormalize=${renorm}`, async () => {
      const { seed, rng } = seeded();
      const logits = toF32(rng.normalArray(N * E, 2));
      const ref = routerRef(logits, N, E, k, renorm);
      const got = await run(logits, N, E, k, renorm);
      expectClose(got.probs, ref.probs, { ...PROB_TOL, what: 'probs', seed });
      expect(got.idx, `idx (seed ${seed})`).toEqual(ref.idx);
      expectClose(got.weights, ref.weights, { ...PROB_TOL, what: 'weights', seed });
      disposeAll(got.tensors);
    });
  }

  it('breaks ties toward the lower expert index', async () => {
    const E = 5;
    const rows = [
      [0, 0, 0, 0, 0], // all equal: 0, 1, 2
      [1, 3, 3, 0, 3], // three-way tie at the top: 1, 2, 4
      [2, -1, 2, 2, 5], // one winner, then a tie: 4, 0, 2
      [-7, -7, -7, -7, -6], // 4, 0, 1
    ];
    const N = rows.length;
    const k = 3;
    const logits = Float64Array.from(rows.flat());
    const got = await run(logits, N, E, k, false);
    expect(got.idx).toEqual([0, 1, 2, 1, 2, 4, 4, 0, 2, 4, 0, 1]);
    expect(got.idx).toEqual(topkIndices(logits, N, E, k));
    expectClose(got.weights, routerWeights(softmaxRows(logits, N, E), got.idx, N, E, k, false), { ...PROB_TOL, what: 'tie weights' });
    disposeAll(got.tensors);
  });

  it('keeps idx in range for NaN and -inf logits', async () => {
    const E = 4;
    const logits = Float64Array.from([NaN, NaN, NaN, NaN, -Infinity, 1, -Infinity, 0]);
    const got = await run(logits, 2, E, 2, false);
    for (const i of got.idx) expect(i).toBeLessThan(E);
    expect(new Set(got.idx.slice(0, 2)).size).toBe(2);
    expect(got.idx.slice(2)).toEqual([1, 3]);
    disposeAll(got.tensors);
  });
});

describe('router top-k with per-chunk counts (routerTopKCounts)', () => {
  // Same routing code as routerTopK, one invocation per chunk of tokens: bitwise equal outputs,
  // plus chunk_counts [E, chunks rounded up to 4] against a host histogram of the reference idx.
  for (const [N, E, k, renorm, chunk] of [
    [1, 4, 2, false, 1],
    [130, 5, 2, true, 7],
    [1000, 8, 2, false, 64],
    [3001, 13, 1, false, 47],
    [300, 64, 4, true, 9], // experts 32..63: the high half of the picked mask
    [50, 8, 2, false, 50], // one chunk of all tokens
  ] as [number, number, number, boolean, number][]) {
    it(`N=${N} E=${E} k=${k} renormalize=${renorm} chunk=${chunk}`, async () => {
      const { seed, rng } = seeded();
      const logits = toF32(rng.normalArray(N * E, 2));
      const tl = rt.upload(Float32Array.from(logits), [N, E]);
      const a = routerTopK(tl, { k, renormalize: renorm });
      const b = routerTopKCounts(tl, { k, renormalize: renorm }, chunk);
      const m = `(seed ${seed})`;
      expect(Array.from(await b.probs.read()), `probs ${m}`).toEqual(Array.from(await a.probs.read()));
      expect(Array.from(await b.weights.read()), `weights ${m}`).toEqual(Array.from(await a.weights.read()));
      const idx = Array.from(await b.idx.read());
      expect(idx, `idx ${m}`).toEqual(topkIndices(logits, N, E, k));
      const chunks = Math.ceil(N / chunk);
      const chunks4 = Math.max(4, Math.ceil(chunks / 4) * 4);
      expect(b.chunkCounts.shape).toEqual([E, chunks4]);
      const want = new Array<number>(E * chunks4).fill(0);
      idx.forEach((e, p) => want[e * chunks4 + Math.floor(Math.floor(p / k) / chunk)]!++);
      expect(Array.from(await b.chunkCounts.read()), `chunk counts ${m}`).toEqual(want);
      disposeAll({ tl, ...a, ...Object.fromEntries(Object.entries(b).map(([n, t]) => [`b_${n}`, t])) });
    });
  }

  it('rejects a chunk size below 1 or above N', () => {
    const tl = rt.upload(new Float32Array(8), [2, 4]);
    expect(() => routerTopKCounts(tl, { k: 2 }, 0)).toThrow(/chunkTokens/);
    expect(() => routerTopKCounts(tl, { k: 2 }, 3)).toThrow(/exceeds N/);
    tl.dispose();
  });
});

describe('router top-k backward', () => {
  for (const [N, E, k, renorm, extra] of [
    [7, 8, 2, false, false],
    [130, 5, 2, true, true],
    [1000, 4, 2, false, true],
    [33, 64, 4, true, false],
  ] as [number, number, number, boolean, boolean][]) {
    it(`matches the float64 analytic gradient: N=${N} E=${E} k=${k} renormalize=${renorm} extra=${extra}`, async () => {
      const { seed, rng } = seeded();
      const logits = toF32(rng.normalArray(N * E, 2));
      const dw = toF32(rng.uniformArray(N * k));
      const dpe = extra ? toF32(rng.uniformArray(N * E)) : undefined;
      const got = await run(logits, N, E, k, renorm);
      // Reference from the GPU's f32 probs so both sides differentiate the same forward values.
      const ref = routerBackwardRef(got.probs, got.idx, dw, N, E, k, renorm, dpe);
      const tdw = rt.upload(Float32Array.from(dw), [N, k]);
      const tdpe = dpe ? rt.upload(Float32Array.from(dpe), [N, E]) : undefined;
      const dl = routerTopKBackward(got.tensors.probs, got.tensors.idx, tdw, { renormalize: renorm, dProbsExtra: tdpe });
      expectClose(await dl.readF32(), ref, { ...GRAD_TOL, what: 'd_logits', seed });
      disposeAll({ ...got.tensors, tdw, dl, ...(tdpe ? { tdpe } : {}) });
    });
  }

  for (const renorm of [false, true]) {
    it(`matches finite differences on a tiny shape (renormalize=${renorm})`, async () => {
      const { seed, rng } = seeded();
      const N = 3;
      const E = 5;
      const k = 2;
      // Logits on a grid spaced 0.5 apart (shuffled), so no two are within the FD step of a tie
      // and the top-k set cannot change under perturbation.
      const logits = new Float64Array(N * E);
      for (let t = 0; t < N; t++) {
        const vals = Array.from({ length: E }, (_, i) => (i - 2) * 0.5 + rng.uniform(-0.1, 0.1));
        for (let e = E - 1; e > 0; e--) {
          const j = rng.int(e + 1);
          [vals[e], vals[j]] = [vals[j]!, vals[e]!];
        }
        for (let e = 0; e < E; e++) logits[t * E + e] = vals[e]!;
      }
      const x = toF32(logits);
      const c = toF32(rng.uniformArray(N * k)); // upstream d_weights
      const r = toF32(rng.uniformArray(N * E)); // upstream extra d_probs
      const idx = topkIndices(x, N, E, k);
      const f = (l: Float64Array): number => {
        const p = softmaxRows(l, N, E);
        const w = routerWeights(p, idx, N, E, k, renorm);
        let s = 0;
        for (let i = 0; i < N * k; i++) s += c[i]! * w[i]!;
        for (let i = 0; i < N * E; i++) s += r[i]! * p[i]!;
        return s;
      };
      const fd = finiteDiff(f, x);
      const got = await run(x, N, E, k, renorm);
      expect(got.idx).toEqual(idx);
      const tc = rt.upload(Float32Array.from(c), [N, k]);
      const tr = rt.upload(Float32Array.from(r), [N, E]);
      const dl = routerTopKBackward(got.tensors.probs, got.tensors.idx, tc, { renormalize: renorm, dProbsExtra: tr });
      // FD in float64 (step 1e-6, error ~1e-10) vs an f32 gradient: 1e-5 of the largest entry.
      expectClose(await dl.readF32(), fd, { rtol: 1e-5, relativeToMax: true, what: 'd_logits vs FD', seed });
      disposeAll({ ...got.tensors, tc, tr, dl });
    });
  }
});
