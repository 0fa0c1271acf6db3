/**
 * Training losses with their backward passes: masked Huber (Time-MoE's regression loss, with the
 * horizon target/mask unfold) and cross-entropy with an ignore index. Kernels: shaders/loss.wgsl.
 *
 * Every loss returns a scalar [1] f32 GPU tensor (no readback) plus what its backward needs; the
 * backward takes the upstream gradient `gout` as a [1] GPU tensor too, so a training step stays
 * one submit. Sums are two-pass in f32 with a fixed order: results are deterministic.
 *
 * Empty denominators: when Σ mask = 0 (Huber) or every target is ignored (cross-entropy) the loss
 * is 0 and the gradient 0 — where PyTorch would give 0/0 = NaN. The returned `count` says which.
 */
import { foldedGrid } from './grid.ts';
import type { Tensor } from './tensor.ts';

/** Time-MoE: torch.nn.HuberLoss(reduction='none', delta=2.0). */
export const TIME_MOE_HUBER_DELTA = 2.0;
export const DEFAULT_IGNORE_INDEX = -1;

/** Threads of the loss kernels (the shader's WG override). */
const WG = 256;
/**
 * Cap on pass-1 workgroups of the Huber sum (one partial per thread: 32 x 256 = 8192 partials).
 * Pass 2 is a single workgroup, so this stays small; on lavapipe 2 cores saturate long before.
 */
const MAX_PARTIAL_GROUPS = 32;
const NAN_BITS = 0x7fc00000;

export interface LossResult {
  /** [1] f32: the mean loss. */
  loss: Tensor;
  /** [1] f32: the denominator (Σ mask, or the number of non-ignored rows); the backward reads it. */
  count: Tensor;
}

export interface CrossEntropyResult extends LossResult {
  /** [N, 2] f32: per-row max logit and log Σ exp(x - max), saved for the backward. */
  stats: Tensor;
}

/** 16-byte uniform block: u32 words with one f32 or i32 slot where a kernel needs it. */

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function expectF32(t: Tensor, what: string): void {
  if (t.dtype !== 'f32') throw new Error(`${what}: ${t} must be f32`);
}

function checkScalar(t: Tensor, what: string): void {
  expectF32(t, what);
  if (t.size !== 1) throw new Error(`${what}: ${t} must have exactly one element`);
}

function checkHuberInputs(pred: Tensor, target: Tensor, mask: Tensor, delta: number, what: string): void {
  for (const [t, name] of [
    [pred, 'pred'],
    [target, 'target'],
    [mask, 'mask'],
  ] as const) {
    expectF32(t, `${what} ${name}`);
    if (!sameShape(t.shape, pred.shape)) throw new Error(`${what}: ${name} ${t} has not the shape of pred ${pred}`);
  }
  if (!(delta > 0) || !Number.isFinite(delta)) throw new Error(`${what}: delta must be a positive finite number, got ${delta}`);
}

/**
 * Σ mask·huber(pred - target) / Σ mask, huber(r) = r²/2 if |r| <= delta else delta·(|r| - delta/2).
 * pred, target, mask: f32 of one shape (any size). Elements with mask 0 contribute exactly 0, even
 * when their target holds NaN (missing data); a NaN at a mask-nonzero element makes the loss NaN.
 */
export function huberLoss(pred: Tensor, target: Tensor, mask: Tensor, delta = TIME_MOE_HUBER_DELTA): LossResult {
  checkHuberInputs(pred, target, mask, delta, 'huberLoss');
  const rt = pred.rt;
  const n = pred.size;
  const groups = Math.min(Math.ceil(n / WG), MAX_PARTIAL_GROUPS);
  const partial = rt.empty([Math.max(groups * WG, 1), 2], 'f32', 'huber partials');
  rt.dispatch(
    rt.kernel({ shader: 'loss', constants: { WG }, entry: 'huber_partial' }),
    { hp_pred: pred, hp_target: target, hp_mask: mask, hp_partial: partial },
    [groups],
    { n, stride: groups * WG, delta },
  );
  const result = finalize(partial, groups * WG, 'huber');
  partial.dispose();
  return result;
}

/** d_pred = gout · mask · clamp(pred - target, -delta, delta) / count; 0 everywhere when count = 0. */
export function huberLossBackward(pred: Tensor, target: Tensor, mask: Tensor, count: Tensor, gout: Tensor, delta = TIME_MOE_HUBER_DELTA): Tensor {
  checkHuberInputs(pred, target, mask, delta, 'huberLossBackward');
  checkScalar(count, 'huberLossBackward count');
  checkScalar(gout, 'huberLossBackward gout');
  const rt = pred.rt;
  const dpred = rt.empty(pred.shape, 'f32', 'huber d_pred');
  rt.dispatch(
    rt.kernel({ shader: 'loss', constants: { WG }, entry: 'huber_backward' }),
    { hb_pred: pred, hb_target: target, hb_mask: mask, hb_count: count, hb_gout: gout, hb_dpred: dpred },
    foldedGrid(rt, pred.size, WG),
    { n: pred.size, stride: 0, delta },
  );
  return dpred;
}

/**
 * Time-MoE's per-element horizon targets: from labels [B, T] (inputs shifted by one) and their loss
 * mask [B, T], build target[b,t,j] = labels[b,t+j] and mask[b,t,j] = lossMask[b,t+j] for t+j < T,
 * else 0 and 0 (so a position near the end still counts for its valid future points).
 */
export function horizonTargets(labels: Tensor, lossMask: Tensor, horizon: number): { target: Tensor; mask: Tensor } {
  expectF32(labels, 'horizonTargets labels');
  expectF32(lossMask, 'horizonTargets lossMask');
  if (labels.shape.length !== 2) throw new Error(`horizonTargets: labels ${labels} must be [B, T]`);
  if (!sameShape(labels.shape, lossMask.shape)) throw new Error(`horizonTargets: lossMask ${lossMask} has not the shape of labels ${labels}`);
  if (!Number.isInteger(horizon) || horizon < 1) throw new Error(`horizonTargets: horizon must be a positive integer, got ${horizon}`);
  const rt = labels.rt;
  const [B, T] = labels.shape as [number, number];
  const shape = [B, T, horizon];
  const target = rt.empty(shape, 'f32', `horizon ${horizon} target`);
  const mask = rt.empty(shape, 'f32', `horizon ${horizon} mask`);
  const n = B * T * horizon;
  rt.dispatch(
    rt.kernel({ shader: 'loss', constants: { WG }, entry: 'horizon_targets' }),
    { hz_labels: labels, hz_lmask: lossMask, hz_target: target, hz_mask: mask },
    foldedGrid(rt, n, WG),
    { n, t: T, h: horizon },
  );
  return { target, mask };
}

/**
 * Time-MoE's loss for one horizon head: predictions [B, T, h] against labels/lossMask [B, T].
 * Returns the loss plus the unfolded target and mask, which `timeMoeHuberLossBackward` needs
 * (the caller disposes them after the backward).
 */
export function timeMoeHuberLoss(pred: Tensor, labels: Tensor, lossMask: Tensor, delta = TIME_MOE_HUBER_DELTA): LossResult & { target: Tensor; mask: Tensor } {
  if (pred.shape.length !== 3 || !sameShape(labels.shape, pred.shape.slice(0, 2)))
    throw new Error(`timeMoeHuberLoss: pred ${pred} must be [B, T, h] for labels ${labels} [B, T]`);
  const { target, mask } = horizonTargets(labels, lossMask, pred.shape[2]!);
  return { ...huberLoss(pred, target, mask, delta), target, mask };
}

/** Mean cross-entropy of logits [N, C] (f32) against class indices [N] (i32); rows whose target is ignoreIndex are skipped. */
export function crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex = DEFAULT_IGNORE_INDEX): CrossEntropyResult {
  const [N, C] = checkCrossEntropyInputs(logits, targets, ignoreIndex, 'crossEntropy');
  const rt = logits.rt;
  const rows = rt.empty([Math.max(N, 1), 2], 'f32', 'ce row losses');
  const stats = rt.empty([N, 2], 'f32', 'ce stats');
  rt.dispatch(
    rt.kernel({ shader: 'loss', constants: { WG }, entry: 'ce_rows' }),
    { cr_logits: logits, cr_targets: targets, cr_rows: rows, cr_stats: stats },
    foldedGrid(rt, N, WG),
    { n: N, c: C, ignore_index: ignoreIndex, nan_bits: NAN_BITS },
  );
  // The single finalize workgroup sums N row pairs directly: N is batch-sized (thousands at most).
  const result = finalize(rows, N, 'ce');
  rows.dispose();
  return { ...result, stats };
}

/** d_logits = gout · (softmax(logits) - onehot(target)) / count, rows with an ignored target 0. */
export function crossEntropyBackward(logits: Tensor, targets: Tensor, stats: Tensor, count: Tensor, gout: Tensor, ignoreIndex = DEFAULT_IGNORE_INDEX): Tensor {
  const [N, C] = checkCrossEntropyInputs(logits, targets, ignoreIndex, 'crossEntropyBackward');
  expectF32(stats, 'crossEntropyBackward stats');
  if (!sameShape(stats.shape, [N, 2])) throw new Error(`crossEntropyBackward: stats ${stats} must be [${N}, 2]`);
  checkScalar(count, 'crossEntropyBackward count');
  checkScalar(gout, 'crossEntropyBackward gout');
  const rt = logits.rt;
  const d = rt.empty([N, C], 'f32', 'ce d_logits');
  rt.dispatch(
    rt.kernel({ shader: 'loss', constants: { WG }, entry: 'ce_backward' }),
    { cb_logits: logits, cb_targets: targets, cb_stats: stats, cb_count: count, cb_gout: gout, cb_dlogits: d },
    foldedGrid(rt, N * C, WG),
    { n: N, c: C, ignore_index: ignoreIndex, nan_bits: NAN_BITS },
  );
  return d;
}

function checkCrossEntropyInputs(logits: Tensor, targets: Tensor, ignoreIndex: number, what: string): [number, number] {
  expectF32(logits, `${what} logits`);
  if (logits.shape.length !== 2) throw new Error(`${what}: logits ${logits} must be [N, C]`);
  const [N, C] = logits.shape as [number, number];
  if (C < 1) throw new Error(`${what}: logits ${logits} need at least one class`);
  if (targets.dtype !== 'i32' || !sameShape(targets.shape, [N])) throw new Error(`${what}: targets ${targets} must be i32 [${N}]`);
  if (!Number.isInteger(ignoreIndex) || Math.abs(ignoreIndex) > 2 ** 31 - 1) throw new Error(`${what}: ignoreIndex must be an i32, got ${ignoreIndex}`);
  return [N, C];
}

/** Pass 2: sum `n` (numerator, denominator) pairs into loss = num/den (0 if den = 0) and count = den. */
function finalize(pairs: Tensor, n: number, what: string): LossResult {
  const rt = pairs.rt;
  const loss = rt.empty([1], 'f32', `${what} loss`);
  const count = rt.empty([1], 'f32', `${what} count`);
  rt.dispatch(rt.kernel({ shader: 'loss', constants: { WG }, entry: 'finalize' }), { fz_partial: pairs, fz_loss: loss, fz_count: count }, [1], { n });
  return { loss, count };
}
