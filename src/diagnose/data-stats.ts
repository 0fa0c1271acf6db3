/**
 * Statistics of the windows as the model sees them, for header.json `data.windowStats` (the data
 * detectors read them; docs/FINDINGS.md "Data problems"). The run passes its training windows, or
 * a sample of them (e.g. every k-th), as WindowDataset.window(i) returns them: normalised inputs
 * and labels plus the window's scale.
 */
import type { WindowStats } from './types.ts';

/** |normalised value| above which a window counts as extreme (see docs/FINDINGS.md for why 50). */
export const EXTREME_VALUE = 50;

export interface WindowSample {
  /** Normalised inputs x'[0:T]. */
  inputs: ArrayLike<number>;
  /** Normalised next-step labels x'[1:T+1]. */
  labels: ArrayLike<number>;
  /** x = x' * scale + mean. */
  scale: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i]!;
}

/** At most `max` window indices of `n`, evenly spaced (all when n <= max): a bounded sample for summarizeWindows. */
export function sampleIndices(n: number, max = 4096): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.floor((i * n) / max));
}

export function summarizeWindows(windows: Iterable<WindowSample>): WindowStats {
  let count = 0;
  let constant = 0;
  let maxIn = 0;
  let maxLabel = 0;
  let extreme = 0;
  const scales: number[] = [];
  const labelMax: number[] = [];
  for (const w of windows) {
    count++;
    let lo = Infinity;
    let hi = -Infinity;
    let mIn = 0;
    for (let i = 0; i < w.inputs.length; i++) {
      const v = w.inputs[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      const a = Math.abs(v);
      if (a > mIn || Number.isNaN(a)) mIn = Number.isNaN(a) ? Infinity : a;
    }
    let mLab = 0;
    for (let i = 0; i < w.labels.length; i++) {
      const a = Math.abs(w.labels[i]!);
      if (a > mLab || Number.isNaN(a)) mLab = Number.isNaN(a) ? Infinity : a;
    }
    if (w.inputs.length > 0 && lo === hi) constant++;
    maxIn = Math.max(maxIn, mIn);
    maxLabel = Math.max(maxLabel, mLab);
    if (Math.max(mIn, mLab) > EXTREME_VALUE) extreme++;
    scales.push(w.scale);
    labelMax.push(mLab);
  }
  scales.sort((a, b) => a - b);
  labelMax.sort((a, b) => a - b);
  return {
    windows: count,
    constantWindows: constant,
    maxAbsInput: maxIn,
    maxAbsLabel: maxLabel,
    p99AbsLabel: quantile(labelMax, 0.99),
    extremeWindows: extreme,
    scale: { min: scales.length ? scales[0]! : NaN, median: quantile(scales, 0.5), max: scales.length ? scales[scales.length - 1]! : NaN },
  };
}
