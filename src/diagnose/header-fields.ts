/**
 * What the run adds to header.json for the diagnosis, in one call (structural types only, so this
 * layer needs nothing from src/train):
 *
 *   const fields = diagnosisHeaderFields({
 *     task: cfg.model.task, numClasses: cfg.model.numClasses, horizons: cfg.model.horizons,
 *     huberDelta: cfg.loss.huberDelta, normalize: cfg.data.normalize, report: data.report,
 *     validBatches: () => take([...data.valid.batches(cfg.schedule.microBatch)], cfg.logging.validBatches),
 *     train: data.train,
 *   });
 *   metrics.describe(paths.header, { ...header, ...fields });
 */
import { classifyBaseline, forecastBaseline, type BaselineBatch } from './baseline.ts';
import { sampleIndices, summarizeWindows, type WindowSample } from './data-stats.ts';
import type { Baseline, DataStats } from './types.ts';

export interface DiagnosisHeaderInput {
  task: 'forecast' | 'classify';
  numClasses?: number;
  horizons: readonly number[];
  huberDelta: number;
  normalize: 'window' | 'series' | 'none';
  /** The data report (src/train/data DataReport): counts are copied, other keys too. */
  report: Omit<DataStats, 'normalize' | 'windowStats'>;
  /** The batches the step-0 validation reads (forecasting baseline); none → the train windows are used. */
  validBatches: () => Iterable<BaselineBatch>;
  /** The training windows (WindowDataset): summarised over at most `maxWindows` of them. */
  train: { length: number; window(i: number): WindowSample & { labels: ArrayLike<number>; inputs: ArrayLike<number> } };
  maxWindows?: number;
}

export function diagnosisHeaderFields(o: DiagnosisHeaderInput): { baseline: Baseline | null; data: DataStats } {
  const idx = sampleIndices(o.train.length, o.maxWindows ?? 4096);
  const windowStats = summarizeWindows(idx.map((i) => o.train.window(i)));
  let baseline: Baseline | null = null;
  if (o.task === 'classify') baseline = o.numClasses !== undefined && o.numClasses >= 2 ? classifyBaseline(o.numClasses) : null;
  else {
    const valid = [...o.validBatches()];
    if (valid.length) baseline = forecastBaseline(valid, o.horizons, o.huberDelta, 'validation');
    else if (idx.length) {
      // No validation windows: the training windows (the step-1 loss is then the comparison).
      const rows = idx.map((i) => o.train.window(i));
      const T = rows[0]!.labels.length;
      const batch: BaselineBatch = {
        B: rows.length,
        T,
        labels: Float64Array.from(rows.flatMap((r) => Array.from(r.labels))),
        mask: new Float64Array(rows.length * T).fill(1),
      };
      baseline = forecastBaseline([batch], o.horizons, o.huberDelta, 'training');
    }
  }
  return { baseline, data: { ...o.report, normalize: o.normalize, windowStats } };
}
