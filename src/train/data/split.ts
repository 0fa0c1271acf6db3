/**
 * Time-ordered train/validation split per series: the validation part is the series' tail, the
 * train part everything before it. The two parts share no point, and windows are cut inside a part,
 * so no validation target is ever seen in training.
 */
import type { CleanSeries } from './clean.ts';
import type { Segment } from './windows.ts';

export interface SplitResult {
  train: Segment[];
  valid: Segment[];
  /** Series too short to give both parts a window: all of it is training data. */
  trainOnly: number;
}

/**
 * Validation length = ceil(validFraction * n), at least contextLength + 1 (one window). When the
 * rest could not hold one training window, the whole series goes to training.
 */
export function splitSeries(series: readonly CleanSeries[], validFraction: number, contextLength: number): SplitResult {
  const need = contextLength + 1;
  const out: SplitResult = { train: [], valid: [], trainOnly: 0 };
  series.forEach((s, seriesIndex) => {
    const n = s.values.length;
    const base = { seriesIndex, seriesId: s.id, ...(s.classLabel !== undefined ? { classLabel: s.classLabel } : {}) };
    const nValid = validFraction > 0 ? Math.max(Math.ceil(validFraction * n), need) : 0;
    if (nValid === 0 || n - nValid < need) {
      if (nValid > 0) out.trainOnly++;
      out.train.push({ ...base, values: s.values, offset: 0 });
      return;
    }
    const cut = n - nValid;
    out.train.push({ ...base, values: s.values.subarray(0, cut), offset: 0 });
    out.valid.push({ ...base, values: s.values.subarray(cut), offset: cut });
  });
  return out;
}
