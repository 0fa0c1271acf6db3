/**
 * Which line charts the dashboard draws and what goes into each, as functions of the store.
 * Colours: one run, one colour per metric (layer, head). Several runs: one colour per run on every
 * chart (runColor; its run card shows it too), the run named in every legend entry, and a chart's
 * metrics told apart by dash (the legend draws each line's dash).
 */
import { seriesColor } from '../../report/chart.ts';
import type { Finding } from '../../diagnose/types.ts';
import { fmtBytes } from './format.ts';
import type { ChartEvent, LineChartSpec, LineSeries, Reference } from './line-chart.ts';
import type { RunData, Store, TrainColumns, Value } from './store.ts';

interface Metric {
  label: string;
  x: readonly number[];
  y: readonly Value[];
  points?: boolean;
  pointsOnly?: boolean;
}

export interface Panel extends LineChartSpec {
  metrics: (store: Store, run: number) => Metric[];
  refs?: (runs: readonly RunData[]) => Reference[];
  /**
   * Why this panel tells nothing about this run (it is then hidden, and the page says why), or
   * null. A panel is also hidden when none of its series has a logged value.
   */
  uninformative?: (d: RunData) => string | null;
  /** Which findings get a marker on this chart. */
  findings?: (f: Finding) => boolean;
}

const DASHES: (number[] | undefined)[] = [undefined, [6, 4], [2, 3], [10, 3, 2, 3], [1, 5]];

/** The colour of run `i` (its position on the page) on every chart, when several runs are shown. */
export function runColor(i: number): string {
  return seriesColor(i);
}

/** Per-layer routing charts: findings about a layer. */
const layerFinding = (f: Finding) => f.layer !== null;

function layerMetrics(key: 'entropy' | 'maxShare' | 'switchLoss') {
  return (s: Store, run: number): Metric[] => {
    const t = s.trainOf(run);
    return t[key].map((y, l) => ({ label: `L${l}`, x: t.step, y: y ?? [] }));
  };
}

/** The train columns with one value per step (not per head, layer or expert). */
type StepColumn = { [K in keyof TrainColumns]: TrainColumns[K] extends Value[] ? K : never }[keyof TrainColumns];

/** Train columns over the step, one line each: [label, column]. */
function trainLines(...lines: [string, StepColumn][]) {
  return (s: Store, run: number): Metric[] => {
    const t = s.trainOf(run);
    return lines.map(([label, key]) => ({ label, x: t.step, y: t[key] }));
  };
}

/** Head names: the config's horizons (forecasting), else the validation's, else their index. */
function headNames(d: RunData, n: number): string[] {
  const model = d.header?.config?.model as { horizons?: unknown; task?: unknown } | undefined;
  if (model?.task === 'classify') return Array.from({ length: n }, (_, i) => (n === 1 ? 'class' : `head ${i}`));
  const h =
    Array.isArray(model?.horizons) && model.horizons.length === n ? (model.horizons as unknown[]) : d.valid.horizons.length === n ? d.valid.horizons : null;
  return Array.from({ length: n }, (_, i) => (h ? `h${String(h[i])}` : `head ${i}`));
}

const maxExperts = (runs: readonly RunData[]) => Math.max(0, ...runs.map((r) => r.experts));

export const PANELS: Panel[] = [
  {
    id: 'loss',
    title: 'Loss: train and validation',
    findings: () => true,
    metrics: (s, run) => {
      const t = s.trainOf(run);
      const v = s.validOf(run);
      return [
        { label: 'train', x: t.step, y: t.loss },
        { label: 'train main', x: t.step, y: t.lossMain },
        { label: 'valid', x: v.step, y: v.loss, points: true },
        { label: 'valid main', x: v.step, y: v.lossMain, points: true },
      ];
    },
  },
  {
    id: 'heads',
    title: 'Train loss per head',
    metrics: (s, run) => {
      const t = s.trainOf(run);
      const names = headNames(s.runs[run]!, t.head.length);
      return t.head.map((y, h) => ({ label: names[h]!, x: t.step, y: y ?? [] }));
    },
  },
  {
    id: 'valid-horizons',
    title: 'Validation per horizon: MSE and MAE (normalised)',
    metrics: (s, run) => {
      const v = s.validOf(run);
      return [
        ...v.horizons.map((h, k) => ({ label: `mse@${h}`, x: v.step, y: v.mse[k] ?? [], points: true })),
        ...v.horizons.map((h, k) => ({ label: `mae@${h}`, x: v.step, y: v.mae[k] ?? [], points: true })),
        ...(v.accuracy.some((a) => a !== null) ? [{ label: 'accuracy', x: v.step, y: v.accuracy, points: true }] : []),
      ];
    },
  },
  { id: 'lr', title: 'Learning rate', metrics: trainLines(['lr', 'lr']) },
  {
    id: 'grad-norm',
    title: 'Gradient norm before and after clipping',
    log: true,
    metrics: trainLines(['pre-clip', 'gradNorm'], ['post-clip', 'gradNormPostClip']),
  },
  {
    id: 'clipped',
    title: 'Clipped fraction of the gradient',
    metrics: trainLines(['clipped', 'clippedFraction']),
  },
  {
    id: 'entropy',
    findings: layerFinding,
    title: 'Router entropy per layer (nats)',
    metrics: layerMetrics('entropy'),
    refs: (runs) => (maxExperts(runs) ? [{ y: Math.log(maxExperts(runs)), label: `uniform ln ${maxExperts(runs)}` }] : []),
  },
  {
    id: 'max-share',
    findings: layerFinding,
    title: 'Largest expert share per layer',
    metrics: layerMetrics('maxShare'),
    refs: (runs) => (maxExperts(runs) ? [{ y: 1 / maxExperts(runs), label: `balanced 1/${maxExperts(runs)}` }] : []),
  },
  {
    id: 'switch',
    title: 'Switch balancing loss per layer (balanced = 1)',
    metrics: layerMetrics('switchLoss'),
    refs: () => [{ y: 1, label: 'balanced' }],
    findings: layerFinding,
  },
  {
    id: 'aux-z',
    title: 'Aux (load-balancing) and z losses',
    metrics: trainLines(['aux', 'aux'], ['z', 'z']),
  },
  {
    id: 'loss-scale',
    title: 'Loss scale and overflow skips',
    log: true,
    // An f32 run logs no loss scale (or 1): a flat line says nothing.
    uninformative: (d) =>
      d.skipped.some((k) => k.overflow) || d.train.lossScale.some((v) => v !== null && v !== 1)
        ? null
        : `loss scale ${d.train.lossScale.some((v) => v === 1) ? '1 at every step' : 'not logged'} and no overflow skip (${String((d.header?.config?.precision as { activations?: unknown } | undefined)?.activations ?? 'f32')} activations)`,
    metrics: (s, run) => {
      const t = s.trainOf(run);
      const over = s.runs[run]!.skipped.filter((k) => k.overflow);
      return [
        { label: 'loss scale', x: t.step, y: t.lossScale },
        { label: 'overflow skip', x: over.map((k) => k.step), y: over.map((k) => k.lossScale), pointsOnly: true },
      ];
    },
  },
  { id: 'tokens', title: 'Throughput (tokens/s)', metrics: trainLines(['tokens/s', 'tokensPerSecond']) },
  {
    id: 'memory',
    title: 'GPU memory: live and peak bytes',
    format: (v) => fmtBytes(v),
    // Binary steps, so the ticks read 24 MiB, 28 MiB, ... rather than 27.3 MiB.
    incrs: [0, 1, 2, 3, 4, 5, 6].flatMap((e) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 1024 ** e)),
    metrics: trainLines(['live', 'liveBytes'], ['peak', 'peakBytes']),
  },
];

/** The series of one panel over every run. */
export function panelSeries(panel: Panel, store: Store): LineSeries[] {
  const runs = store.runs.filter(Boolean);
  const per = runs.map((d) => panel.metrics(store, d.run));
  const multi = runs.length > 1;
  const out: LineSeries[] = [];
  per.forEach((metrics, ri) =>
    metrics.forEach((m, mi) => {
      out.push({
        label: multi ? `${m.label} · ${runs[ri]!.label}` : m.label,
        x: m.x,
        y: m.y,
        color: multi ? runColor(ri) : seriesColor(mi),
        dash: multi ? DASHES[mi % DASHES.length] : undefined,
        // Past the dashes, a metric of a run is a thicker line (its legend entry names it).
        ...(multi && mi >= DASHES.length ? { width: 2 } : {}),
        points: m.points,
        pointsOnly: m.pointsOnly,
      });
    }),
  );
  return out;
}

/**
 * Why a panel is hidden for these runs (null: shown). Hidden only when it tells nothing about any
 * run: every run uninformative, or no logged value at all once the runs have steps.
 */
export function hiddenReason(panel: Panel, store: Store, series: readonly LineSeries[]): string | null {
  const runs = store.runs.filter(Boolean);
  if (!runs.length || runs.every((d) => d.train.step.length === 0)) return null;
  if (panel.uninformative) {
    const reasons = runs.map((d) => panel.uninformative!(d));
    if (reasons.every((r) => r !== null)) return runs.length > 1 ? reasons.map((r, i) => `${runs[i]!.label}: ${r}`).join('; ') : reasons[0]!;
  }
  if (series.every((s) => s.y.every((v) => v === null || v === undefined))) return 'not logged by this run';
  return null;
}

const SEVERITY_COLOR = { error: '#b0186f', warning: '#c77800' } as const;

/** Markers at the first step of each finding the panel shows (every run's). */
export function panelEvents(panel: Panel, store: Store): ChartEvent[] {
  if (!panel.findings) return [];
  const runs = store.runs.filter(Boolean);
  return runs.flatMap((d) =>
    d.diagnosis
      .findings()
      .filter(panel.findings!)
      .map((f) => ({
        x: f.firstStep,
        label: `${f.kind}${f.layer !== null ? ` L${f.layer}` : ''}${runs.length > 1 ? ` · ${d.label}` : ''}`,
        color: SEVERITY_COLOR[f.severity],
        title: f.title,
      })),
  );
}
