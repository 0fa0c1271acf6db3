/** Loaded series → cleaned, split, windowed data and the data report. Platform-free (the browser page uses it). */
import { type DataConfig, type SourceConfig, effectiveMinLength, effectiveStride } from './config.ts';
import { type CleanReport, type CleanSeries, cleanSeries } from './clean.ts';
import { DataError } from './errors.ts';
import type { Series } from './series.ts';
import { splitSeries } from './split.ts';
import { meanStd, WindowDataset } from './windows.ts';

export interface DataReport extends CleanReport {
  source: string;
  /** Points over all series kept. */
  points: number;
  /** Series cut by maxSeries. */
  droppedMaxSeries: number;
  /** Series too short for a validation window: used for training only. */
  trainOnlySeries: number;
  trainWindows: number;
  validWindows: number;
  contextLength: number;
  stride: number;
  /** What the loader says about the file: for a CSV, the column(s) used, those skipped as time/index and why, and how to choose. */
  notes: string[];
  warnings: string[];
}

export interface LoadedData {
  train: WindowDataset;
  valid: WindowDataset;
  report: DataReport;
  /** The cleaned series (anomaly labels included), e.g. for evaluation. */
  series: CleanSeries[];
}

export function describeSource(src: SourceConfig): string {
  switch (src.kind) {
    case 'csv':
    case 'jsonl':
    case 'json':
      return `${src.kind} ${src.path}`;
    case 'dataset':
      return `dataset ${src.name}`;
    case 'synthetic':
      return `synthetic ${src.series}x${src.length} seed ${src.seed}`;
    case 'synthetic-classes':
      return `synthetic classes ${src.classes}x${src.seriesPerClass} seed ${src.seed}`;
  }
}

/**
 * Loaded series → cleaned, split, windowed data, as the run trains on it: the platform-free half of
 * loadData (load.ts reads the files on Node; the browser page passes its bundled or dropped series).
 * `source` names the data in the report; `notes` are the loader's lines for it.
 */
export function prepareData(raw: Series[], cfg: DataConfig, opts: { seed?: number; source: string; notes?: string[] }): LoadedData {
  const T = cfg.contextLength;
  const stride = effectiveStride(cfg);
  const minLength = effectiveMinLength(cfg);
  const notes = opts.notes ?? [];
  const cleaned = cleanSeries(raw, { nonFinite: cfg.nonFinite, minLength });
  let series = cleaned.series;
  const droppedMaxSeries = cfg.maxSeries !== undefined ? Math.max(0, series.length - cfg.maxSeries) : 0;
  if (droppedMaxSeries > 0) series = series.slice(0, cfg.maxSeries);
  const source = opts.source;
  if (series.length === 0) {
    const r = cleaned.report;
    throw new DataError(
      `${source}: no usable series (${r.seriesIn} loaded: ${r.droppedShort} shorter than ${minLength} points, ${r.droppedNonFinite} dropped for NaN/Inf, ${r.droppedEmpty} empty): lower data.contextLength / data.minLength or use longer series`,
    );
  }

  const split = splitSeries(series, cfg.validFraction, T);
  if (cfg.normalize === 'series') {
    // Statistics of the train part only, applied to both parts: validation values stay unseen.
    const stats = new Map(split.train.map((s) => [s.seriesIndex, meanStd(s.values)]));
    for (const s of [...split.train, ...split.valid]) s.stats = stats.get(s.seriesIndex)!;
  }
  const seed = opts.seed ?? 0;
  const train = new WindowDataset(split.train, { contextLength: T, stride, normalize: cfg.normalize, seed });
  const valid = new WindowDataset(split.valid, { contextLength: T, stride, normalize: cfg.normalize, seed });

  const warnings: string[] = [];
  if (cfg.validFraction > 0 && valid.length === 0) {
    warnings.push(
      `no validation windows: no series is long enough for a training and a validation window (each needs contextLength + 1 = ${T + 1} points, so at least ${2 * (T + 1)} in all); lower data.contextLength or set data.validFraction to 0`,
    );
  }
  if (cleaned.report.constantSeries > 0) warnings.push(`${cleaned.report.constantSeries} constant series kept: their windows normalise to zeros`);
  const report: DataReport = {
    ...cleaned.report,
    seriesOut: series.length,
    source,
    points: series.reduce((a, s) => a + s.values.length, 0),
    droppedMaxSeries,
    trainOnlySeries: split.trainOnly,
    trainWindows: train.length,
    validWindows: valid.length,
    contextLength: T,
    stride,
    notes,
    warnings,
  };
  return { train, valid, report, series };
}

/** Multi-line summary for the CLI. */
export function formatReport(r: DataReport): string {
  const lines = [
    `data: ${r.source}: ${r.seriesIn} series in, ${r.seriesOut} kept (${r.points} points)`,
    ...(r.notes ?? []).map((n) => `  ${n}`),
    `  non-finite points ${r.nonFinitePoints}, repaired ${r.repairedPoints}; dropped: ${r.droppedNonFinite} NaN/Inf, ${r.droppedShort} short, ${r.droppedEmpty} empty, ${r.droppedMaxSeries} over maxSeries; constant ${r.constantSeries}`,
    `  windows (T=${r.contextLength}, stride ${r.stride}): train ${r.trainWindows}, valid ${r.validWindows}${r.trainOnlySeries ? ` (${r.trainOnlySeries} series train-only)` : ''}`,
    ...r.details.map((d) => `  - ${d}`),
    ...r.warnings.map((w) => `  warning: ${w}`),
  ];
  return lines.join('\n');
}
