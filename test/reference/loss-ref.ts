/** Float64 references of the losses (src/kernels/loss.ts): Huber, horizon unfold, cross-entropy. */

export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

/** Σ mask·huber(pred - target) / Σ mask (0 when Σ mask = 0); masked-out elements are skipped outright. */
export function huberLossRef(pred: ArrayLike<number>, target: ArrayLike<number>, mask: ArrayLike<number>, delta: number): { loss: number; count: number } {
  let num = 0;
  let den = 0;
  for (let i = 0; i < pred.length; i++) {
    const m = mask[i]!;
    if (m === 0) continue;
    num += m * huber(pred[i]! - target[i]!, delta);
    den += m;
  }
  return { loss: den > 0 ? num / den : 0, count: den };
}

export function huberGradRef(pred: ArrayLike<number>, target: ArrayLike<number>, mask: ArrayLike<number>, delta: number, gout: number): Float64Array {
  const { count } = huberLossRef(pred, target, mask, delta);
  const d = new Float64Array(pred.length);
  if (count === 0) return d;
  for (let i = 0; i < pred.length; i++) {
    const m = mask[i]!;
    if (m === 0) continue;
    const r = pred[i]! - target[i]!;
    d[i] = (gout * m * Math.max(-delta, Math.min(delta, r))) / count;
  }
  return d;
}

/**
 * Time-MoE's unfold, written the way its PyTorch code does it: pad labels/mask with h-1 zeros
 * at the end of each series, then take window [t, t+h) for each t.
 */
export function horizonRef(
  labels: ArrayLike<number>,
  lossMask: ArrayLike<number>,
  B: number,
  T: number,
  h: number,
): { target: Float64Array; mask: Float64Array } {
  const target = new Float64Array(B * T * h);
  const mask = new Float64Array(B * T * h);
  for (let b = 0; b < B; b++) {
    const padL = new Float64Array(T + h - 1);
    const padM = new Float64Array(T + h - 1);
    for (let t = 0; t < T; t++) {
      padL[t] = labels[b * T + t]!;
      padM[t] = lossMask[b * T + t]!;
    }
    for (let t = 0; t < T; t++)
      for (let j = 0; j < h; j++) {
        target[(b * T + t) * h + j] = padL[t + j]!;
        mask[(b * T + t) * h + j] = padM[t + j]!;
      }
  }
  return { target, mask };
}

/** log Σ exp of one row, max-subtracted. */
function logSumExp(x: ArrayLike<number>, off: number, C: number): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, x[off + c]!);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(x[off + c]! - m);
  return m + Math.log(s);
}

/** Mean cross-entropy over rows whose target is not ignoreIndex (0 if none). */
export function crossEntropyRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  N: number,
  C: number,
  ignoreIndex = -1,
): { loss: number; count: number } {
  let num = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === ignoreIndex) continue;
    num += logSumExp(logits, n * C, C) - logits[n * C + t]!;
    count++;
  }
  return { loss: count > 0 ? num / count : 0, count };
}

export function crossEntropyGradRef(logits: ArrayLike<number>, targets: ArrayLike<number>, N: number, C: number, gout: number, ignoreIndex = -1): Float64Array {
  const { count } = crossEntropyRef(logits, targets, N, C, ignoreIndex);
  const d = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === ignoreIndex) continue;
    const lse = logSumExp(logits, n * C, C);
    for (let c = 0; c < C; c++) d[n * C + c] = (gout * (Math.exp(logits[n * C + c]! - lse) - (c === t ? 1 : 0))) / count;
  }
  return d;
}

export { numericGrad } from './ops.ts';
