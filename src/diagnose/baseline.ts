/**
 * The no-information baseline the initial loss is judged against (docs/FINDINGS.md, "bad start").
 * The run computes it once before training and writes it into header.json as `baseline`.
 *
 * - Classification: a model that knows nothing predicts the uniform distribution, whose
 *   cross-entropy is ln C for C classes, whatever the labels.
 * - Forecasting: windows are normalised per window (x' = (x - mean) / scale, src/train/data/
 *   windows.ts), so "predict the window's mean" is predicting 0 in the normalised space. Its loss
 *   is the model's loss with every prediction 0: per head, Σ mask·huber(0 - target) / Σ mask over
 *   the horizon-unfolded targets (target[b,t,j] = labels[b,t+j] while t+j < T, mask 0 past the end;
 *   shaders/loss.wgsl horizon_targets), Huber with the run's delta (r²/2 if |r| <= δ else
 *   δ(|r| - δ/2)); the mean over heads (src/model/losses.ts forecastLoss); the mean over batches
 *   (src/train/step/evaluate.ts). Computed in float64 on the host.
 */
import type { Baseline } from './types.ts';

export function classifyBaseline(numClasses: number): Baseline {
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`classifyBaseline: numClasses must be an integer >= 2, got ${numClasses}`);
  return { kind: 'uniform-classes', loss: Math.log(numClasses), how: `ln ${numClasses}: the cross-entropy of a uniform guess over ${numClasses} classes` };
}

/** One batch as the data pipeline makes it (src/train/data/windows.ts Batch): row-major [B, T]. */
export interface BaselineBatch {
  /** labels[b*T + t] = normalised point t+1 of window b. */
  labels: ArrayLike<number>;
  /** 1 where the label counts (0 on padding rows). */
  mask: ArrayLike<number>;
  B: number;
  T: number;
}

export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

/** The mean over heads of the masked Huber loss of predicting 0, for one batch. */
export function forecastBaselineBatch(b: BaselineBatch, horizons: readonly number[], delta: number): number {
  const { B, T } = b;
  if (b.labels.length < B * T || b.mask.length < B * T)
    throw new Error(`forecastBaseline: labels/mask hold ${b.labels.length}/${b.mask.length} values, fewer than B*T = ${B * T}`);
  let sum = 0;
  for (const h of horizons) {
    if (!Number.isInteger(h) || h < 1) throw new Error(`forecastBaseline: horizon must be a positive integer, got ${h}`);
    // Label position p is the target of (t, j) for every j < h with t = p - j >= 0: min(h, p + 1) times.
    let num = 0;
    let count = 0;
    for (let row = 0; row < B; row++) {
      for (let p = 0; p < T; p++) {
        const m = b.mask[row * T + p]!;
        if (m === 0) continue;
        const times = Math.min(h, p + 1);
        num += times * m * huber(b.labels[row * T + p]!, delta);
        count += times * m;
      }
    }
    sum += count > 0 ? num / count : 0;
  }
  return sum / horizons.length;
}

/**
 * The forecasting baseline over `batches` (the validation batches the step-0 validation reads,
 * so the two numbers are over the same windows): mean over batches of forecastBaselineBatch.
 */
export function forecastBaseline(batches: Iterable<BaselineBatch>, horizons: readonly number[], delta = 2, what = 'validation'): Baseline {
  if (!horizons.length) throw new Error('forecastBaseline: no horizons');
  if (!(delta > 0)) throw new Error(`forecastBaseline: delta must be > 0, got ${delta}`);
  let total = 0;
  let n = 0;
  let windows = 0;
  for (const b of batches) {
    total += forecastBaselineBatch(b, horizons, delta);
    n++;
    let rows = 0;
    for (let r = 0; r < b.B; r++) if (b.mask[r * b.T] !== 0) rows++;
    windows += rows;
  }
  if (n === 0) throw new Error('forecastBaseline: no batches');
  return {
    kind: 'predict-window-mean',
    loss: total / n,
    how: `Huber (delta ${delta}) of predicting each window's mean (0 after normalisation), mean over heads ${JSON.stringify([...horizons])}, over ${windows} ${what} windows in ${n} batches`,
  };
}
