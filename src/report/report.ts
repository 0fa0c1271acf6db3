/**
 * Comparison reports for paired runs (a failure and its fix): <outDir>/README.md with a summary
 * table (one column per run) and, per chart, one SVG per run side by side on a shared y range so
 * the pictures compare honestly. Chart specs and summary rows are plain functions of a run's
 * metrics, so a scenario can add its own.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bandsNeeded, dataRange, legendLayout, lineChart, logTicks, niceTicks, xRangeOf, type Series } from './chart.ts';
import type { RunMetrics, TrainRecord } from './metrics-reader.ts';
import { readMetrics } from './metrics-file.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

export interface ChartSpec {
  /** Base name of the SVG files: `<file>-<run slug>.svg`. */
  file: string;
  title: string;
  yLabel: string;
  xLabel?: string;
  logY?: boolean;
  yMin?: number;
  yMax?: number;
  /** Same y (and x) range in every run's chart; default true. */
  sharedY?: boolean;
  series: (m: RunMetrics) => Series[];
  references?: (m: RunMetrics) => { y: number; label: string }[];
  annotations?: (m: RunMetrics) => { x: number; label: string }[];
}

export type SummaryRow = readonly [label: string, value: string | number];

export interface RunSpec {
  label: string;
  /** Run directory holding metrics.jsonl, or the .jsonl file itself. */
  dir: string;
}

export interface ComparisonReportOptions {
  outDir: string;
  title: string;
  /** Markdown, placed under the title. */
  description: string;
  runs: readonly RunSpec[];
  /** Default: standardCharts over the runs' metrics. */
  charts?: readonly ChartSpec[] | ((metrics: readonly RunMetrics[]) => readonly ChartSpec[]);
  /** Default: summarize. */
  summary?: (m: RunMetrics) => readonly SummaryRow[];
}

export interface ComparisonReport {
  readme: string;
  svgs: string[];
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Four significant digits; non-finite values spelled out, never shown as 0. */
export function fmtNum(v: number | undefined): string {
  if (v === undefined) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

function cell(v: string | number): string {
  return (typeof v === 'number' ? fmtNum(v) : v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'run'
  );
}

// ---------------------------------------------------------------------------------------------
// Helpers over metrics

const steps = (m: RunMetrics) => m.train;
const trainSeries = (m: RunMetrics, pick: (r: TrainRecord) => number): [number, number][] => steps(m).map((r) => [r.step, pick(r)]);

function layersOf(m: RunMetrics): number[] {
  const set = new Set<number>();
  for (const r of m.train) for (const l of r.routing) set.add(l.layer);
  return [...set].sort((a, b) => a - b);
}

function expertsOf(m: RunMetrics): number {
  for (const r of m.train) for (const l of r.routing) if (l.load.length) return l.load.length;
  return 0;
}

function routingSeries(m: RunMetrics, pick: (l: TrainRecord['routing'][number]) => number): Series[] {
  return layersOf(m).map((layer) => ({
    name: `layer ${layer}`,
    points: m.train.flatMap((r) => {
      const l = r.routing.find((x) => x.layer === layer);
      return l ? [[r.step, pick(l)] as [number, number]] : [];
    }),
  }));
}

// ---------------------------------------------------------------------------------------------
// Ready chart specs

export const lossChart: ChartSpec = {
  file: 'loss',
  title: 'Loss',
  yLabel: 'loss',
  series: (m) => [
    { name: 'train loss', points: trainSeries(m, (r) => r.loss) },
    { name: 'train main loss', points: trainSeries(m, (r) => r.lossMain), dashed: true },
    { name: 'valid loss', points: m.valid.map((v) => [v.step, v.loss]) },
  ],
};

export const gradNormChart: ChartSpec = {
  file: 'grad-norm',
  title: 'Gradient norm, before and after clipping',
  yLabel: 'global grad norm',
  logY: true,
  series: (m) => [
    { name: 'pre-clip', points: trainSeries(m, (r) => r.gradNorm) },
    { name: 'post-clip', points: trainSeries(m, (r) => r.gradNormPostClip), dashed: true },
  ],
};

export const clippedFractionChart: ChartSpec = {
  file: 'clipped-fraction',
  title: 'Fraction of the gradient removed by clipping',
  yLabel: '1 - clip coefficient',
  yMin: 0,
  yMax: 1,
  series: (m) => [{ name: 'clipped fraction', points: trainSeries(m, (r) => r.clippedFraction) }],
};

const balancedShare = (m: RunMetrics) => {
  const e = expertsOf(m);
  return e ? [{ y: 1 / e, label: `balanced 1/E = ${fmtNum(1 / e)}` }] : [];
};

export const maxShareChart: ChartSpec = {
  file: 'max-expert-share',
  title: 'Largest expert share, per layer',
  yLabel: 'max expert share',
  yMin: 0,
  yMax: 1,
  series: (m) => routingSeries(m, (l) => l.maxShare),
  references: balancedShare,
};

export const entropyChart: ChartSpec = {
  file: 'router-entropy',
  title: 'Router entropy, per layer',
  yLabel: 'entropy (nats)',
  yMin: 0,
  series: (m) => routingSeries(m, (l) => l.entropy),
  references: (m) => {
    const e = expertsOf(m);
    return e > 1 ? [{ y: Math.log(e), label: `uniform ln E = ${fmtNum(Math.log(e))}` }] : [];
  },
};

export const auxChart: ChartSpec = {
  file: 'aux-loss',
  title: 'Load-balancing aux loss',
  yLabel: 'aux loss',
  series: (m) => [
    { name: 'aux (unweighted)', points: trainSeries(m, (r) => r.aux) },
    { name: 'auxFactor × aux (in the loss)', points: trainSeries(m, (r) => r.auxFactor * r.aux), dashed: true },
  ],
};

export const scheduleChart: ChartSpec = {
  file: 'schedule',
  title: 'Learning rate and aux factor',
  yLabel: 'value',
  sharedY: false,
  series: (m) => [
    { name: 'lr', points: trainSeries(m, (r) => r.lr) },
    { name: 'auxFactor', points: trainSeries(m, (r) => r.auxFactor), dashed: true },
  ],
};

/** One line per expert: the share of the top-k picks each expert received in `layer`. */
export function expertLoadChart(layer: number): ChartSpec {
  return {
    file: `expert-load-layer${layer}`,
    title: `Expert load, layer ${layer}`,
    yLabel: 'share of top-k picks',
    yMin: 0,
    yMax: 1,
    series: (m) => {
      const E = expertsOf(m);
      return Array.from({ length: E }, (_, e) => ({
        name: `expert ${e}`,
        points: m.train.flatMap((r) => {
          const l = r.routing.find((x) => x.layer === layer);
          // A missing entry is a shape change, not a value: leave it out rather than invent one.
          return l && e < l.load.length ? [[r.step, l.load[e]!] as [number, number]] : [];
        }),
      }));
    },
    references: balancedShare,
  };
}

/** The standard set: loss, grad norm, clipping, routing per layer, aux loss, load per expert per layer. */
export function standardCharts(metrics: readonly RunMetrics[]): ChartSpec[] {
  const layers = [...new Set(metrics.flatMap(layersOf))].sort((a, b) => a - b);
  return [lossChart, gradNormChart, clippedFractionChart, maxShareChart, entropyChart, auxChart, ...layers.map(expertLoadChart)];
}

// ---------------------------------------------------------------------------------------------
// Summary

/** Key numbers of a run: where it started, where it ended, how clipping and routing behaved. */
export function summarize(m: RunMetrics): SummaryRow[] {
  const t = m.train;
  const first = t[0];
  const last = t[t.length - 1];
  const v0 = m.valid.find((v) => v.step === 0) ?? m.valid[0];
  const vEnd = m.valid[m.valid.length - 1];
  const rows: SummaryRow[] = [];
  rows.push([
    'optimizer steps logged',
    t.length ? `${t.length}${first?.microSteps && first.microSteps > 1 ? ` (${first.microSteps} micro-steps each)` : ''}` : '0',
  ]);
  rows.push([`train loss, step ${first?.step ?? 1}`, fmtNum(first?.loss)]);
  rows.push([`train loss, step ${last?.step ?? '—'} (last)`, fmtNum(last?.loss)]);
  rows.push([`valid loss, step ${v0?.step ?? 0}`, fmtNum(v0?.loss)]);
  rows.push([`valid loss, step ${vEnd?.step ?? '—'} (last)`, fmtNum(vEnd?.loss)]);
  const h = vEnd?.horizons[0];
  if (h) rows.push([`valid MSE horizon ${h.horizon} (last)`, fmtNum(h.mse)]);
  rows.push([`grad norm pre-clip, step ${first?.step ?? 1}`, fmtNum(first?.gradNorm)]);
  rows.push([`clipped fraction, step ${first?.step ?? 1}`, fmtNum(first?.clippedFraction)]);
  const norms = t.map((r) => r.gradNorm);
  rows.push(['max grad norm pre-clip', norms.length ? fmtNum(norms.some((n) => Number.isNaN(n)) ? NaN : Math.max(...norms)) : '—']);
  const skipped = t.filter((r) => r.skipped);
  rows.push(['skipped steps', skipped.length ? `${skipped.length} (first at step ${skipped[0]!.step})` : '0']);
  const badLoss = t.filter((r) => !Number.isFinite(r.loss));
  rows.push(['steps with non-finite loss', badLoss.length ? `${badLoss.length} (first at step ${badLoss[0]!.step})` : '0']);
  const firstBad = t.find((r) => r.nonFinite.length > 0);
  const b = firstBad?.nonFinite[0];
  rows.push([
    'first non-finite tensor',
    firstBad && b ? `step ${firstBad.step}: ${b.name}${b.layer >= 0 ? ` (layer ${b.layer})` : ''}, ${fmtNum(b.nonFinite)} values` : 'none',
  ]);
  const E = expertsOf(m);
  // Routing of a step with a non-finite forward is not available (read back as NaN / []): quote
  // the last step that has it, and say how many steps at the end had none.
  const available = (r: TrainRecord) => r.routing.length > 0 && r.routing.every((l) => Number.isFinite(l.entropy) && l.load.length > 0);
  const lastRouted = [...t].reverse().find(available);
  const unavailable = t.filter((r) => !available(r));
  if (unavailable.length) rows.push(['steps without routing statistics (non-finite forward)', `${unavailable.length} (first at step ${unavailable[0]!.step})`]);
  const at = lastRouted && lastRouted !== last ? `step ${lastRouted.step}, the last with routing` : 'last';
  for (const l of lastRouted?.routing ?? []) {
    rows.push([`max expert share, layer ${l.layer} (${at}; balanced ${E ? fmtNum(1 / E) : '—'})`, fmtNum(l.maxShare)]);
    rows.push([`router entropy, layer ${l.layer} (${at}; uniform ${E > 1 ? fmtNum(Math.log(E)) : '—'})`, fmtNum(l.entropy)]);
  }
  if (!lastRouted && t.length) rows.push(['routing statistics', 'n/a (no step with a finite forward)']);
  rows.push(['aux loss (last, unweighted)', fmtNum(last?.aux)]);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Writing

function metricsPath(dir: string): string {
  return existsSync(dir) && statSync(dir).isFile() ? dir : join(dir, 'metrics.jsonl');
}

/** Nice x/y bounds covering every run's data, so side-by-side charts share their axes. */
function sharedBounds(spec: ChartSpec, all: Series[][], refs: number[]): { yMin?: number; yMax?: number; xMin?: number; xMax?: number } {
  const flat = all.flat();
  const out: { yMin?: number; yMax?: number; xMin?: number; xMax?: number } = { yMin: spec.yMin, yMax: spec.yMax };
  const xr = xRangeOf(flat);
  if (xr) {
    const t = niceTicks(xr.min, xr.max);
    out.xMin = t.lo;
    out.xMax = t.hi;
  }
  const yr = dataRange([...flat, { name: 'references', points: refs.map((y) => [0, y] as const) }], spec.logY ?? false);
  if (yr) {
    const lo = spec.yMin ?? yr.min;
    const hi = spec.yMax ?? yr.max;
    const t = spec.logY
      ? logTicks(lo, Math.max(lo, hi), { lo: spec.yMin !== undefined, hi: spec.yMax !== undefined })
      : niceTicks(lo, hi, 5, { lo: spec.yMin !== undefined, hi: spec.yMax !== undefined });
    out.yMin = t.lo;
    out.yMax = t.hi;
  }
  return out;
}

export function writeComparisonReport(opts: ComparisonReportOptions): ComparisonReport {
  if (opts.runs.length === 0) throw new Error('writeComparisonReport: no runs given');
  mkdirSync(opts.outDir, { recursive: true });
  const paths = opts.runs.map((r) => metricsPath(r.dir));
  for (const [i, p] of paths.entries()) if (!existsSync(p)) throw new Error(`run "${opts.runs[i]!.label}": no metrics at ${p}`);
  const metrics = paths.map((p) => readMetrics(p));

  // Slugs name the SVG files; two runs with the same slug get a numeric suffix.
  const seen = new Map<string, number>();
  const slugs = opts.runs.map((r) => {
    const s = slug(r.label);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    return n ? `${s}-${n + 1}` : s;
  });

  const charts = typeof opts.charts === 'function' ? opts.charts(metrics) : (opts.charts ?? standardCharts(metrics));
  const summary = opts.summary ?? summarize;
  const md: string[] = [`# ${opts.title}`, '', opts.description.trim(), ''];

  md.push('## Runs', '');
  opts.runs.forEach((r, i) =>
    md.push(
      `- **${cell(r.label)}**: \`${relative(opts.outDir, paths[i]!) || paths[i]}\` (${metrics[i]!.train.length} train records, ${metrics[i]!.valid.length} validations)`,
    ),
  );
  md.push('');

  // Summary: rows in the order they first appear in any run, one column per run.
  const perRun = metrics.map((m) => new Map(summary(m).map(([k, v]) => [k, v] as const)));
  const keys: string[] = [];
  for (const rows of perRun) for (const k of rows.keys()) if (!keys.includes(k)) keys.push(k);
  md.push('## Summary', '');
  md.push(`| | ${opts.runs.map((r) => cell(r.label)).join(' | ')} |`);
  md.push(`|---|${opts.runs.map(() => '---').join('|')}|`);
  for (const k of keys) md.push(`| ${cell(k)} | ${perRun.map((rows) => (rows.has(k) ? cell(rows.get(k)!) : '—')).join(' | ')} |`);
  md.push('');

  md.push('## Charts', '');
  md.push(
    'Side by side, one column per run, on shared axes. Markers in the red band at the top of a chart are non-finite values (× NaN, ▲ +Inf, ▼ -Inf), never plotted as 0; on a log scale, values ≤ 0 sit in a grey band at the bottom.',
    '',
  );
  const svgs: string[] = [];
  for (const spec of charts) {
    const series = metrics.map((m) => spec.series(m));
    const shared = spec.sharedY !== false;
    const refs = metrics.flatMap((m) => spec.references?.(m).map((r) => r.y) ?? []);
    const bounds = shared ? sharedBounds(spec, series, refs) : { yMin: spec.yMin, yMax: spec.yMax };
    const reserveBands = shared ? bandsNeeded(series.flat(), spec.logY ?? false) : undefined;
    const legendRows = shared ? Math.max(...series.map((s) => legendLayout(s, undefined, spec.logY ?? false).length)) : undefined;
    const files = metrics.map((m, i) => {
      const file = `${slug(spec.file)}-${slugs[i]}.svg`;
      const svg = lineChart({
        title: `${spec.title} — ${opts.runs[i]!.label}`,
        xLabel: spec.xLabel ?? 'optimizer step',
        yLabel: spec.yLabel,
        logY: spec.logY,
        series: series[i]!,
        ...bounds,
        reserveBands,
        legendRows,
        references: spec.references?.(m),
        annotations: spec.annotations?.(m),
      });
      writeFileAtomic(join(opts.outDir, file), svg);
      svgs.push(join(opts.outDir, file));
      return file;
    });
    md.push(`### ${spec.title}`, '');
    md.push(`| ${opts.runs.map((r) => cell(r.label)).join(' | ')} |`);
    md.push(`|${opts.runs.map(() => '---').join('|')}|`);
    md.push(`| ${files.map((f, i) => `![${cell(`${spec.title}, ${opts.runs[i]!.label}`)}](${f})`).join(' | ')} |`);
    md.push('');
  }

  const readme = join(opts.outDir, 'README.md');
  writeFileAtomic(readme, `${md.join('\n')}\n`);
  return { readme, svgs };
}
