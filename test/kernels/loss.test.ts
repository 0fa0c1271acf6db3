import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import {
  crossEntropy,
  crossEntropyBackward,
  horizonTargets,
  huberLoss,
  huberLossBackward,
  timeMoeHuberLoss,
  TIME_MOE_HUBER_DELTA,
} from '../../src/kernels/loss.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, toF32, seeded } from '../reference/rng.ts';
import { expectClose, expectFinite } from '../reference/compare.ts';
import { crossEntropyGradRef, crossEntropyRef, horizonRef, huberGradRef, huberLossRef, numericGrad } from '../reference/loss-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const DELTA = TIME_MOE_HUBER_DELTA;

async function scalar(t: Tensor): Promise<number> {
  return (await t.readF32())[0]!;
}

function disposeAll(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

/** Residuals from three regimes: tiny (1e-4), quadratic (|r| < delta) and huge (linear branch, up to 1e3). */
function residual(rng: Rng): number {
  const k = rng.int(3);
  if (k === 0) return rng.uniform(-1e-4, 1e-4);
  if (k === 1) return rng.uniform(-DELTA, DELTA);
  return Math.sign(rng.uniform()) * rng.uniform(DELTA, 1e3);
}

function huberInputs(rng: Rng, n: number, maskKind: 'binary' | 'weights') {
  const target = toF32(rng.normalArray(n, 3));
  const pred = toF32(target.map((t) => t + residual(rng)));
  const mask = toF32(Array.from({ length: n }, () => (rng.next() < 0.3 ? 0 : maskKind === 'binary' ? 1 : rng.uniform(0.1, 2))));
  return { pred, target, mask };
}

describe('masked Huber loss', () => {
  for (const [n, maskKind] of [
    [1, 'binary'],
    [7, 'binary'],
    [1001, 'weights'],
    [70_001, 'binary'], // > 32 workgroups x 256 threads: the grid-stride loop takes ~9 elements per thread
  ] as const) {
    it(`forward and backward match float64, n=${n}, ${maskKind} mask`, async () => {
      const { seed, rng } = seeded();
      const { pred, target, mask } = huberInputs(rng, n, maskKind);
      if (n === 1) mask[0] = 1;
      const gout = Math.fround(rng.uniform(-2, 2));
      const tp = rt.upload(Float32Array.from(pred), [n]);
      const tt = rt.upload(Float32Array.from(target), [n]);
      const tm = rt.upload(Float32Array.from(mask), [n]);
      const tg = rt.upload([gout], [1]);
      const { loss, count } = huberLoss(tp, tt, tm);
      const dpred = huberLossBackward(tp, tt, tm, count, tg);
      const ref = huberLossRef(pred, target, mask, DELTA);
      // All terms are >= 0: per-thread runs of <= n/8192 + 1 adds, then a 256-way loop and an 8-level
      // tree in finalize: f32 error ~20 ulp here.
      expectClose([await scalar(loss)], [ref.loss], { rtol: 1e-5, what: 'huber loss', seed });
      // Σ mask: exact for binary masks (integers < 2^24); f32 sum of weights otherwise.
      expectClose([await scalar(count)], [ref.count], { rtol: maskKind === 'binary' ? 0 : 1e-5, what: 'huber count', seed });
      // Per element: one subtraction, clamp, two products and a division in f32 -> a few ulp.
      expectClose(await dpred.readF32(), huberGradRef(pred, target, mask, DELTA, gout), { rtol: 1e-5, atol: 1e-30, what: 'huber d_pred', seed });
      // A fixed reduction order makes the loss bit-identical on a second run.
      const again = huberLoss(tp, tt, tm);
      expect(await scalar(again.loss)).toBe(await scalar(loss));
      disposeAll(tp, tt, tm, tg, loss, count, dpred, again.loss, again.count);
    });
  }

  it('an all-zero mask gives loss 0 and gradient 0 (not 0/0 = NaN)', async () => {
    const { seed, rng } = seeded();
    const n = 333;
    const tp = rt.upload(Float32Array.from(rng.normalArray(n)), [n]);
    const tt = rt.upload(Float32Array.from(rng.normalArray(n)), [n]);
    const tm = rt.zeros([n]);
    const tg = rt.upload([1], [1]);
    const { loss, count } = huberLoss(tp, tt, tm);
    const d = huberLossBackward(tp, tt, tm, count, tg);
    expect(await scalar(loss)).toBe(0);
    expect(await scalar(count)).toBe(0);
    expect(Array.from(await d.readF32()).every((v) => v === 0)).toBe(true);
    disposeAll(tp, tt, tm, tg, loss, count, d);
  });

  it('ignores NaN targets where the mask is 0 (missing data), but not where it is 1', async () => {
    const { seed, rng } = seeded();
    const n = 41;
    const { pred, target, mask } = huberInputs(rng, n, 'binary');
    mask[0] = 1;
    mask[5] = 0;
    target[5] = NaN;
    const tp = rt.upload(Float32Array.from(pred), [n]);
    const tt = rt.upload(Float32Array.from(target), [n]);
    const tm = rt.upload(Float32Array.from(mask), [n]);
    const tg = rt.upload([1], [1]);
    const { loss, count } = huberLoss(tp, tt, tm);
    const d = huberLossBackward(tp, tt, tm, count, tg);
    expectClose([await scalar(loss)], [huberLossRef(pred, target, mask, DELTA).loss], { rtol: 1e-5, what: 'loss with masked NaN', seed });
    expectFinite(await d.readF32(), 'd_pred with masked NaN');
    // The same NaN at an unmasked element must surface, never be hidden.
    const mask2 = Float32Array.from(mask);
    mask2[5] = 1;
    const tm2 = rt.upload(mask2, [n]);
    const r2 = huberLoss(tp, tt, tm2);
    expect(Number.isNaN(await scalar(r2.loss))).toBe(true);
    disposeAll(tp, tt, tm, tg, loss, count, d, tm2, r2.loss, r2.count);
  });

  it('backward agrees with central finite differences (tiny shape, both branches)', async () => {
    const { seed, rng } = seeded();
    const n = 9;
    const target = toF32(rng.normalArray(n));
    // Residuals in both branches, kept >= 0.05 away from the kink at |r| = delta.
    const r = Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * (i % 3 === 0 ? rng.uniform(0.05, 1.95) : rng.uniform(2.05, 6)));
    const pred = toF32(target.map((t, i) => t + r[i]!));
    const mask = toF32([1, 0, 1, 0.5, 1, 1, 0, 1, 2]);
    const gout = Math.fround(rng.uniform(0.5, 2));
    const tp = rt.upload(Float32Array.from(pred), [n]);
    const tt = rt.upload(Float32Array.from(target), [n]);
    const tm = rt.upload(Float32Array.from(mask), [n]);
    const tg = rt.upload([gout], [1]);
    const { loss, count } = huberLoss(tp, tt, tm);
    const d = await huberLossBackward(tp, tt, tm, count, tg).readF32();
    const fd = numericGrad((p) => gout * huberLossRef(p, target, mask, DELTA).loss, pred);
    // FD truncation error ~1e-10 (smooth away from the kink); the GPU gradient is f32: 1e-5 of the max.
    expectClose(d, fd, { rtol: 1e-5, relativeToMax: true, what: 'huber FD', seed });
    disposeAll(tp, tt, tm, tg, loss, count);
  });
});

describe('Time-MoE horizon targets', () => {
  for (const [B, T, h] of [
    [1, 1, 1],
    [3, 37, 1],
    [3, 37, 8],
    [2, 19, 32], // horizon longer than the series: every position is partly padding
  ] as const) {
    it(`unfolds labels and mask like Time-MoE's pad+unfold, B=${B} T=${T} h=${h}`, async () => {
      const { seed, rng } = seeded();
      const labels = toF32(rng.normalArray(B * T));
      // Left padding (leading zeros, as Time-MoE's packed windows have) plus scattered zeros.
      const lossMask = toF32(Array.from({ length: B * T }, (_, i) => (i % T < rng.int(3) || rng.next() < 0.15 ? 0 : 1)));
      const tl = rt.upload(Float32Array.from(labels), [B, T]);
      const tlm = rt.upload(Float32Array.from(lossMask), [B, T]);
      const { target, mask } = horizonTargets(tl, tlm, h);
      expect(target.shape).toEqual([B, T, h]);
      const ref = horizonRef(labels, lossMask, B, T, h);
      // A pure copy: bit-exact.
      expectClose(await target.readF32(), ref.target, { rtol: 0, what: 'horizon target', seed });
      expectClose(await mask.readF32(), ref.mask, { rtol: 0, what: 'horizon mask', seed });

      // End to end: predictions [B, T, h] of a Linear(d -> h) head.
      const pred = toF32(Array.from(ref.target, (t) => t + residual(rng)));
      const tp = rt.upload(Float32Array.from(pred), [B, T, h]);
      const tg = rt.upload([1], [1]);
      const res = timeMoeHuberLoss(tp, tl, tlm);
      const d = huberLossBackward(tp, res.target, res.mask, res.count, tg);
      const lref = huberLossRef(pred, ref.target, ref.mask, DELTA);
      // Same sums as the Huber tests: ~20 ulp of a sum of non-negative terms.
      expectClose([await scalar(res.loss)], [lref.loss], { rtol: 1e-5, what: 'time-moe loss', seed });
      expectClose(await d.readF32(), huberGradRef(pred, ref.target, ref.mask, DELTA, 1), { rtol: 1e-5, atol: 1e-30, what: 'time-moe d_pred', seed });
      disposeAll(tl, tlm, target, mask, tp, tg, res.loss, res.count, res.target, res.mask, d);
    });
  }

  it('counts the valid future points of positions near the end', async () => {
    const T = 5;
    const h = 3;
    const tl = rt.upload([10, 11, 12, 13, 14], [1, T]);
    const tlm = rt.upload([1, 1, 1, 1, 1], [1, T]);
    const { target, mask } = horizonTargets(tl, tlm, h);
    const tg = Array.from(await target.readF32());
    const mk = Array.from(await mask.readF32());
    // t = T-2: future points t, t+1 exist, t+2 is padding.
    expect(tg.slice((T - 2) * h, (T - 1) * h)).toEqual([13, 14, 0]);
    expect(mk.slice((T - 2) * h, (T - 1) * h)).toEqual([1, 1, 0]);
    expect(mk.reduce((a, b) => a + b, 0)).toBe(5 + 4 + 3); // Σ_j (T - j)
    disposeAll(tl, tlm, target, mask);
  });
});

function ceTargets(rng: Rng, N: number, C: number, ignoreFrac: number): Int32Array {
  return Int32Array.from({ length: N }, () => (rng.next() < ignoreFrac ? -1 : rng.int(C)));
}

async function runCe(logits: Float64Array, targets: Int32Array, N: number, C: number, gout: number) {
  const tl = rt.upload(Float32Array.from(logits), [N, C]);
  const tt = rt.upload(targets, [N], 'i32');
  const tg = rt.upload([gout], [1]);
  const { loss, count, stats } = crossEntropy(tl, tt);
  const d = crossEntropyBackward(tl, tt, stats, count, tg);
  const out = { loss: await scalar(loss), count: await scalar(count), d: await d.readF32() };
  disposeAll(tl, tt, tg, loss, count, stats, d);
  return out;
}

describe('cross-entropy', () => {
  for (const [N, C, ignoreFrac] of [
    [1, 1, 0],
    [37, 280, 0.2],
    [5, 1000, 0],
    [300, 3, 0.3],
    [65, 64, 0.1], // C exactly one row-workgroup wide
  ] as const) {
    it(`forward and backward match float64, N=${N} C=${C}, ${ignoreFrac * 100}% ignored`, async () => {
      const { seed, rng } = seeded();
      const logits = toF32(rng.normalArray(N * C, 3));
      const targets = ceTargets(rng, N, C, ignoreFrac);
      const gout = Math.fround(rng.uniform(-2, 2));
      const got = await runCe(logits, targets, N, C, gout);
      const ref = crossEntropyRef(logits, targets, N, C);
      // Row loss (m - x_t) + log Σexp: <= 1000 sequential f32 adds of exps (~1e-6 relative in
      // practice, C·eps/2 = 6e-5 at worst), then a mean.
      expectClose([got.loss], [ref.loss], { rtol: 1e-5, atol: 1e-6, what: 'ce loss', seed });
      expect(got.count).toBe(ref.count);
      // p = exp(x - m - log s): absolute error ~1e-6 of p, relative to the largest gradient entry.
      expectClose(got.d, crossEntropyGradRef(logits, targets, N, C, gout), { rtol: 1e-5, relativeToMax: true, what: 'ce d_logits', seed });
    });
  }

  it('stays finite and exact for extreme logits (±1e4)', async () => {
    const { seed, rng } = seeded();
    const N = 6;
    const C = 280;
    const logits = toF32(Array.from({ length: N * C }, () => (rng.next() < 0.5 ? 1e4 : -1e4) + rng.uniform(-1, 1)));
    for (let c = 0; c < C; c++) logits[c] = 1e4; // row 0: all equal -> loss = ln C
    for (let c = 0; c < C; c++) logits[C + c] = -1e4; // row 1: all at -1e4
    logits[2 * C + 7] = 1e4;
    logits[2 * C + 8] = -1e4; // row 2 targets class 8: loss ~2e4
    const targets = ceTargets(rng, N, C, 0);
    targets[2] = 8;
    const got = await runCe(logits, targets, N, C, 1);
    expect(Number.isFinite(got.loss)).toBe(true);
    expectFinite(got.d, 'ce d_logits at ±1e4');
    const ref = crossEntropyRef(logits, targets, N, C);
    // Row losses up to ~2e4 computed as (m - x_t) + log s: f32 relative error ~1e-7.
    expectClose([got.loss], [ref.loss], { rtol: 1e-5, what: 'ce loss at ±1e4', seed });
    expectClose(got.d, crossEntropyGradRef(logits, targets, N, C, 1), { rtol: 1e-5, relativeToMax: true, what: 'ce d_logits at ±1e4', seed });
    const row0 = crossEntropyRef(logits.subarray(0, C), targets.subarray(0, 1), 1, C);
    expect(row0.loss).toBeCloseTo(Math.log(C), 10);
  });

  it('keeps full precision for logits offset by 1e4 (no cancellation against a large max)', async () => {
    const { seed, rng } = seeded();
    const N = 7;
    const C = 280;
    // Values near 1e4 are f32-exact to ~1e-3, but the reference sees the same rounded inputs:
    // the loss (~ln 280) must still come out to f32 precision, not to ulp(1e4) ~ 1e-3.
    const logits = toF32(Array.from({ length: N * C }, () => 1e4 + 3 * rng.normal()));
    const targets = ceTargets(rng, N, C, 0);
    // Row by row, so a per-row error is not averaged away by the mean.
    for (let r = 0; r < N; r++) {
      const x = logits.subarray(r * C, (r + 1) * C);
      const t = targets.subarray(r, r + 1);
      const got = await runCe(x, t, 1, C, 1);
      // m - x_t is exact (Sterbenz); log s of 280 sequential f32 adds carries ~1e-6 at most in
      // practice: rtol 4e-6 of a loss ~10. The naive lse - x_t is off by ulp(1e4)/2 ~ 5e-4 (~3e-5).
      expectClose([got.loss], [crossEntropyRef(x, t, 1, C).loss], { rtol: 4e-6, what: `ce loss at offset 1e4, row ${r}`, seed });
      expectClose(got.d, crossEntropyGradRef(x, t, 1, C, 1), { rtol: 1e-5, relativeToMax: true, what: `ce d_logits at offset 1e4, row ${r}`, seed });
    }
  });

  it('every target ignored gives loss 0 and gradient 0', async () => {
    const { seed, rng } = seeded();
    const N = 9;
    const C = 280;
    const got = await runCe(toF32(rng.normalArray(N * C)), new Int32Array(N).fill(-1), N, C, 1);
    expect(got.loss).toBe(0);
    expect(got.count).toBe(0);
    expect(Array.from(got.d).every((v) => v === 0)).toBe(true);
  });

  it('makes an out-of-range target loud (NaN) instead of reading past the row', async () => {
    const N = 3;
    const C = 4;
    const got = await runCe(new Float64Array(N * C), Int32Array.from([0, 4, 1]), N, C, 1);
    expect(Number.isNaN(got.loss)).toBe(true);
  });

  it('backward agrees with central finite differences (tiny shape, one row ignored)', async () => {
    const { seed, rng } = seeded();
    const N = 4;
    const C = 5;
    const logits = toF32(rng.normalArray(N * C, 2));
    const targets = Int32Array.from([rng.int(C), -1, rng.int(C), rng.int(C)]);
    const gout = Math.fround(rng.uniform(0.5, 2));
    const got = await runCe(logits, targets, N, C, gout);
    const fd = numericGrad((x) => gout * crossEntropyRef(x, targets, N, C).loss, logits);
    // FD truncation ~1e-10; the GPU gradient is f32: 1e-5 of the max entry.
    expectClose(got.d, fd, { rtol: 1e-5, relativeToMax: true, what: 'ce FD', seed });
  });
});
