/**
 * Which line charts the dashboard draws and what goes into each, as functions of the store.
 * Colours: one per metric (layer, head), or one per run when a chart has one metric; with several
 * runs overlaid, a chart of several metrics tells the runs apart by dash.
 */
import { seriesColor } from '../../report/chart.ts';
import { fmtBytes } from './format.ts';
import type { LineChartSpec, LineSeries, Reference } from './line-chart.ts';
import type { RunData, Store, Value } from './store.ts';

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
}

const DASHES: (number[] | undefined)[] = [undefined, [6, 4], [2, 3], [10, 3, 2, 3], [1, 5]];

function layerMetrics(key: 'entropy' | 'maxShare' | 'switchLoss') {
  return (s: Store, run: number): Metric[] => {
    const t = s.trainOf(run);
    return t[key].map((y, l) => ({ label: `L${l}`, x: t.step, y: y ?? [] }));
  };
}

/** Head names: the config's horizons (forecasting), else the validation's, else their index. */
function headNames(d: RunData, n: number): string[] {
  const model = d.header?.config?.model as { horizons?: unknown; task?: unknown } | undefined;
  if (model?.task === 'classify') return Array.from({ length: n }, (_, i) => (n === 1 ? 'class' : `head ${i}`));
  const h = Array.isArray(model?.horizons) && model.horizons.length === n ? (model.horizons as unknown[]) : d.valid.horizons.length === n ? d.valid.horizons : null;
  return Array.from({ length: n }, (_, i) => (h ? `h${String(h[i])}` : `head ${i}`));
}

const maxExperts = (runs: readonly RunData[]) => Math.max(0, ...runs.map((r) => r.experts));

export const PANELS: Panel[] = [
  {
    id: 'loss',
    title: 'Loss: train and validation',
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
  { id: 'lr', title: 'Learning rate', metrics: (s, run) => [{ label: 'lr', x: s.trainOf(run).step, y: s.trainOf(run).lr }] },
  {
    id: 'grad-norm',
    title: 'Gradient norm before and after clipping',
    log: true,
    metrics: (s, run) => {
      const t = s.trainOf(run);
      return [
        { label: 'pre-clip', x: t.step, y: t.gradNorm },
        { label: 'post-clip', x: t.step, y: t.gradNormPostClip },
      ];
    },
  },
  { id: 'clipped', title: 'Clipped fraction of the gradient', metrics: (s, run) => [{ label: 'clipped', x: s.trainOf(run).step, y: s.trainOf(run).clippedFraction }] },
  {
    id: 'entropy',
    title: 'Router entropy per layer (nats)',
    metrics: layerMetrics('entropy'),
    refs: (runs) => (maxExperts(runs) ? [{ y: Math.log(maxExperts(runs)), label: `uniform ln ${maxExperts(runs)}` }] : []),
  },
  {
    id: 'max-share',
    title: 'Largest expert share per layer',
    metrics: layerMetrics('maxShare'),
    refs: (runs) => (maxExperts(runs) ? [{ y: 1 / maxExperts(runs), label: `balanced 1/${maxExperts(runs)}` }] : []),
  },
  { id: 'switch', title: 'Switch balancing loss per layer (balanced = 1)', metrics: layerMetrics('switchLoss'), refs: () => [{ y: 1, label: 'balanced' }] },
  {
    id: 'aux-z',
    title: 'Aux (load-balancing) and z losses',
    metrics: (s, run) => {
      const t = s.trainOf(run);
      return [
        { label: 'aux', x: t.step, y: t.aux },
        { label: 'z', x: t.step, y: t.z },
      ];
    },
  },
  {
    id: 'loss-scale',
    title: 'Loss scale and overflow skips',
    log: true,
    metrics: (s, run) => {
      const t = s.trainOf(run);
      const over = s.runs[run]!.skipped.filter((k) => k.overflow);
      return [
        { label: 'loss scale', x: t.step, y: t.lossScale },
        { label: 'overflow skip', x: over.map((k) => k.step), y: over.map((k) => k.lossScale), pointsOnly: true },
      ];
    },
  },
  { id: 'tokens', title: 'Throughput (tokens/s)', metrics: (s, run) => [{ label: 'tokens/s', x: s.trainOf(run).step, y: s.trainOf(run).tokensPerSecond }] },
  {
    id: 'memory',
    title: 'GPU memory: live and peak bytes',
    format: (v) => fmtBytes(v),
    metrics: (s, run) => {
      const t = s.trainOf(run);
      return [
        { label: 'live', x: t.step, y: t.liveBytes },
        { label: 'peak', x: t.step, y: t.peakBytes },
      ];
    },
  },
];

/** The series of one panel over every run. */
export function panelSeries(panel: Panel, store: Store): LineSeries[] {
  const runs = store.runs.filter(Boolean);
  const per = runs.map((d) => panel.metrics(store, d.run));
  const metricCount = Math.max(0, ...per.map((m) => m.length));
  const out: LineSeries[] = [];
  per.forEach((metrics, ri) =>
    metrics.forEach((m, mi) => {
      const color = seriesColor(metricCount === 1 ? ri : mi);
      out.push({
        label: runs.length > 1 ? `${m.label} · ${runs[ri]!.label}` : m.label,
        x: m.x,
        y: m.y,
        color,
        dash: runs.length > 1 && metricCount > 1 ? DASHES[ri % DASHES.length] : undefined,
        points: m.points,
        pointsOnly: m.pointsOnly,
      });
    }),
  );
  return out;
}
