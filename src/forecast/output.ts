/**
 * What forecast.js writes: forecasts.csv (csv-stringify), one SVG chart per series (the report
 * charts of src/report/chart.ts), evaluation.json, and the stdout table. Built as strings first so
 * the folder can be written atomically in one go.
 */
import { stringify } from 'csv-stringify/sync';
import { lineChart, type Point, type Series as ChartSeries } from '../report/chart.ts';
import { slug } from '../report/report.ts';
import type { ErrorSummary, Scale } from './metrics.ts';

export interface ForecastRow {
  series: string;
  /** Index of the first forecast point (the context is the T points before it). */
  origin: number;
  /** Index of the point in the series (0-based), origin + step - 1. */
  index: number;
  step: number;
  forecast: number;
  /** Known for held-out windows, null for the future. */
  actual: number | null;
}

/** Full float64 precision (shortest round-trip), so the CSV re-reads to the same numbers. */
function num(v: number): string {
  return Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : '-Infinity';
}

export function forecastsCsv(rows: readonly ForecastRow[]): string {
  return stringify(
    rows.map((r) => [r.series, r.origin, r.index, r.step, num(r.forecast), r.actual === null ? '' : num(r.actual)]),
    { header: true, columns: ['series', 'origin', 'index', 'step', 'forecast', 'actual'] },
  );
}

/** File names (without .svg) for series ids: slugs, made unique. */
export function chartNames(ids: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return ids.map((id) => {
    const base = slug(id);
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}-${n}`;
  });
}

/** The x axis of a forecast chart: a series' time column (dates or numbers), else the point's index. */
export interface ChartTime {
  column: string;
  dates: boolean;
  /** The time of point `index` of the series (past its end: extrapolated, see seriesTime). */
  at: (index: number) => number;
}

/**
 * The time of every point of a series from its time column; points past the end (the forecast)
 * continue at the median spacing of its last 64 points. Null when the series has no time column.
 */
export function seriesTime(time: { column: string; values: ArrayLike<number>; dates: boolean } | undefined): ChartTime | null {
  if (!time || time.values.length === 0) return null;
  const v = time.values;
  const n = v.length;
  const gaps: number[] = [];
  for (let i = Math.max(1, n - 64); i < n; i++) gaps.push(v[i]! - v[i - 1]!);
  gaps.sort((a, b) => a - b);
  const step = gaps.length ? gaps[gaps.length >> 1]! : 1;
  return { column: time.column, dates: time.dates, at: (i) => (i < n ? v[Math.max(0, i)]! : v[n - 1]! + (i - (n - 1)) * step) };
}

export interface ChartInput {
  title: string;
  /** First index of the context. */
  start: number;
  context: ArrayLike<number>;
  forecast: ArrayLike<number>;
  actual?: ArrayLike<number>;
  /** Other forecasts drawn dashed (e.g. the best baseline), named in the legend. */
  others?: { name: string; values: ArrayLike<number> }[];
  /** Real timestamps on the x axis (the series' time column); the point index when absent. */
  time?: ChartTime | null;
}

export function forecastChart(c: ChartInput): string {
  const x = (i: number) => (c.time ? c.time.at(i) : i);
  const pts = (from: number, v: ArrayLike<number>): Point[] => Array.from({ length: v.length }, (_, i) => [x(from + i), v[i]!] as const);
  const origin = c.start + c.context.length;
  // The forecast line starts at the last context point so it reads as a continuation.
  const last: Point = [x(origin - 1), c.context[c.context.length - 1]!];
  const series: ChartSeries[] = [
    { name: 'context', points: pts(c.start, c.context), color: '#7f7f7f' },
    ...(c.actual ? [{ name: 'actual', points: [last, ...pts(origin, c.actual)], color: '#2ca02c' }] : []),
    { name: 'forecast (model)', points: [last, ...pts(origin, c.forecast)], color: '#1f77b4' },
    ...(c.others ?? []).map((o, i) => ({
      name: o.name,
      points: [last, ...pts(origin, o.values)],
      dashed: true,
      color: ['#ff7f0e', '#9467bd', '#8c564b', '#e377c2'][i % 4],
    })),
  ];
  // Wide enough for the title (15 px bold, ~9 px a character): series ids can be long.
  const width = Math.max(640, Math.ceil(c.title.length * 9 + 40));
  const xLabel = c.time ? `${c.time.column}${c.time.dates ? ' (UTC)' : ''}` : 'index';
  return lineChart({
    title: c.title,
    xLabel,
    yLabel: 'value',
    series,
    width,
    xTime: c.time?.dates ?? false,
    // Between the last context point and the first forecast; its label over the frame, clear of the data.
    annotations: [{ x: (x(origin - 1) + x(origin)) / 2, label: 'forecast from here' }],
    annotationLabels: 'above',
  });
}

/** The baselines the held-out charts pick from (window mean is never the one to beat). */
export const CHART_BASELINES = ['naive', 'seasonal naive', 'drift'] as const;

/** Index of the lowest finite value (NaN never wins), -1 when none is finite. */
export function lowest(values: readonly number[]): number {
  let best = -1;
  values.forEach((v, j) => {
    if (Number.isFinite(v) && (best < 0 || v < values[best]!)) best = j;
  });
  return best;
}

/**
 * Mean error per step ahead (1..H) over every evaluated window, one line per method: where the
 * model gains or loses against the baselines as the horizon grows.
 */
export function errorByHorizonChart(
  perStep: Readonly<Record<string, ErrorSummary>>,
  methods: readonly string[],
  windows: number,
  metric: 'mse' | 'mae' = 'mse',
): string {
  const colors: Record<string, string> = { model: '#1f77b4', naive: '#ff7f0e', 'seasonal naive': '#9467bd', drift: '#8c564b', 'window mean': '#7f7f7f' };
  const series: ChartSeries[] = methods.map((m) => ({
    name: m === 'model' ? 'model' : `${m} (baseline)`,
    points: (perStep[m]?.[metric] ?? []).map((v, k) => [k + 1, v] as const),
    color: colors[m],
    dashed: m !== 'model',
  }));
  return lineChart({
    title: `${metric.toUpperCase()} (normalised) by steps ahead, over all ${windows} held-out windows`,
    xLabel: 'steps ahead',
    yLabel: `${metric.toUpperCase()} (normalised)`,
    series,
    width: 720,
  });
}

export interface MethodMetrics {
  normalised: ErrorSummary;
  original: ErrorSummary;
}

/** Four significant digits, non-finite spelled out. */
function fmt(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Inf' : '-Inf';
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : v.toPrecision(4);
}

export interface TableRow {
  horizon: number;
  metric: 'mse' | 'mae';
  scale: Scale;
  values: number[];
  /** Index of the lowest finite value (NaN never wins); -1 when none is finite. */
  best: number;
}

export function tableRows(methods: readonly string[], metrics: Readonly<Record<string, MethodMetrics>>, horizons: readonly number[]): TableRow[] {
  const rows: TableRow[] = [];
  horizons.forEach((h, i) => {
    for (const scale of ['normalised', 'original'] as const)
      for (const metric of ['mse', 'mae'] as const) {
        const values = methods.map((m) => metrics[m]![scale][metric][i]!);
        rows.push({ horizon: h, metric, scale, values, best: lowest(values) });
      }
  });
  return rows;
}

/** The stdout table: one row per (horizon, metric, scale), the best value of each row starred. */
export function formatTable(methods: readonly string[], rows: readonly TableRow[]): string {
  const w = Math.max(10, ...methods.map((m) => m.length + 2));
  const head = `${'horizon'.padEnd(9)}${'metric'.padEnd(16)}${methods.map((m) => m.padStart(w)).join('')}`;
  const lines = rows.map((r) => {
    const cells = r.values.map((v, j) => `${fmt(v)}${j === r.best ? '*' : ' '}`.padStart(w));
    return `${`h=${r.horizon}`.padEnd(9)}${`${r.metric.toUpperCase()} ${r.scale === 'normalised' ? 'norm.' : 'orig.'}`.padEnd(16)}${cells.join('')}`;
  });
  return [head, ...lines].join('\n');
}

/** Where the model wins and where it does not, in words: per baseline, then the rows it loses. */
export function verdict(methods: readonly string[], rows: readonly TableRow[]): string[] {
  const out: string[] = [];
  const model = methods.indexOf('model');
  const wins = rows.filter((r) => r.best === model).length;
  out.push(`the model has the lowest error in ${wins} of ${rows.length} rows`);
  methods.forEach((name, j) => {
    if (j === model) return;
    const better = rows.filter((r) => r.values[model]! < r.values[j]!);
    const where =
      better.length === rows.length
        ? 'in every row'
        : better.length === 0
          ? 'in no row'
          : `in ${better.length} of ${rows.length} rows (${better.map((r) => `h=${r.horizon} ${r.metric.toUpperCase()} ${r.scale === 'normalised' ? 'norm.' : 'orig.'}`).join(', ')})`;
    out.push(`model vs ${name}: lower error ${where}`);
  });
  return out;
}

/** JSON with non-finite numbers written as strings ("NaN", "Infinity"), as metrics.jsonl does. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity') : v), 2)}\n`;
}
