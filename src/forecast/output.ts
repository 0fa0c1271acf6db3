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

export interface ChartInput {
  title: string;
  /** First index of the context. */
  start: number;
  context: ArrayLike<number>;
  forecast: ArrayLike<number>;
  actual?: ArrayLike<number>;
  /** Other forecasts drawn dashed (e.g. a baseline). */
  others?: { name: string; values: ArrayLike<number> }[];
}

export function forecastChart(c: ChartInput): string {
  const pts = (from: number, v: ArrayLike<number>): Point[] => Array.from({ length: v.length }, (_, i) => [from + i, v[i]!] as const);
  const origin = c.start + c.context.length;
  // The forecast line starts at the last context point so it reads as a continuation.
  const last: Point = [origin - 1, c.context[c.context.length - 1]!];
  const series: ChartSeries[] = [
    { name: 'context', points: pts(c.start, c.context), color: '#7f7f7f' },
    ...(c.actual ? [{ name: 'actual', points: [last, ...pts(origin, c.actual)], color: '#2ca02c' }] : []),
    { name: 'forecast (model)', points: [last, ...pts(origin, c.forecast)], color: '#1f77b4' },
    ...(c.others ?? []).map((o, i) => ({ name: o.name, points: [last, ...pts(origin, o.values)], dashed: true, color: ['#ff7f0e', '#9467bd', '#8c564b', '#e377c2'][i % 4] })),
  ];
  // Wide enough for the title (15 px bold, ~9 px a character): series ids can be long.
  const width = Math.max(640, Math.ceil(c.title.length * 9 + 40));
  return lineChart({ title: c.title, xLabel: 'index', yLabel: 'value', series, width, annotations: [{ x: origin - 0.5, label: 'forecast from here' }] });
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
        let best = -1;
        values.forEach((v, j) => {
          if (Number.isFinite(v) && (best < 0 || v < values[best]!)) best = j;
        });
        rows.push({ horizon: h, metric, scale, values, best });
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
    const where = better.length === rows.length ? 'in every row' : better.length === 0 ? 'in no row' : `in ${better.length} of ${rows.length} rows (${better.map((r) => `h=${r.horizon} ${r.metric.toUpperCase()} ${r.scale === 'normalised' ? 'norm.' : 'orig.'}`).join(', ')})`;
    out.push(`model vs ${name}: lower error ${where}`);
  });
  return out;
}

/** JSON with non-finite numbers written as strings ("NaN", "Infinity"), as metrics.jsonl does. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity') : v), 2)}\n`;
}
