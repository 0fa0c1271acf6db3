/**
 * A uPlot line chart that never hides a non-finite value (as src/report/chart.ts for the static
 * reports): NaN / ±Inf (and values <= 0 on a log axis) break the line and are drawn as markers
 * in a red band at the top of the plot, and the legend prints them as "NaN", never as 0.
 */
/// <reference lib="dom" />
import uPlot from 'uplot';
import type { Value } from './store.ts';
import { fmtValue } from './format.ts';

export interface LineSeries {
  label: string;
  x: readonly number[];
  y: readonly Value[];
  color: string;
  dash?: number[];
  width?: number;
  /** Draw each point (sparse series such as validation). */
  points?: boolean;
  /** Points and no line (events such as overflow skips). */
  pointsOnly?: boolean;
}

export interface Reference {
  y: number;
  label: string;
}

export type MarkerKind = 'NaN' | '+Inf' | '-Inf' | '<=0';

export interface Marker {
  series: number;
  x: number;
  kind: MarkerKind;
}

/** What a chart holds, read back by the browser test (test/ui/dashboard.browser.test.ts). */
export interface ChartContents {
  id: string;
  title: string;
  x: number[];
  series: { label: string; plotted: (number | null | undefined)[]; raw: (Value | undefined)[] }[];
  markers: { series: string; x: number; kind: MarkerKind }[];
}

/** Shared x zoom: drag to zoom any chart and all follow; double-click to see every step again. */
export class ZoomSync {
  range: { min: number; max: number } | null = null;
  readonly members = new Set<uPlot>();
  applying = false;

  /** uPlot's setScale hook: a user zoom (or reset) on one chart, applied to the others. */
  changed(u: uPlot, full: { min: number; max: number } | null): void {
    if (this.applying) return;
    const { min, max } = u.scales.x;
    if (min === undefined || max === undefined) return;
    this.range = !full || (min <= full.min && max >= full.max) ? null : { min, max };
    this.applying = true;
    for (const o of this.members) if (o !== u && this.range) o.setScale('x', this.range);
    this.applying = false;
  }
}

const BAND_CSS = 14;
const BAD = '#d62728';

function kindOf(v: number, log: boolean): MarkerKind | null {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return log && v <= 0 ? '<=0' : null;
}

interface Aligned {
  x: number[];
  plotted: (number | null | undefined)[][];
  raw: (Value | undefined)[][];
  markers: Marker[];
}

/**
 * One x array for all series. Missing x's become undefined (the line goes on through them: a
 * validation every 50 steps is one line), non-finite values null (the line breaks there).
 */
function align(series: readonly LineSeries[], log: boolean): Aligned {
  const shared = series.length > 0 && series.every((s) => s.x === series[0]!.x);
  let x: number[];
  let index: (s: LineSeries) => (number | undefined)[];
  if (shared) {
    x = series[0]!.x.slice();
    index = (s) => s.x.map((_, i) => i);
  } else {
    x = [...new Set(series.flatMap((s) => s.x))].sort((a, b) => a - b);
    const pos = new Map(x.map((v, i) => [v, i]));
    index = (s) => {
      const out: (number | undefined)[] = new Array(x.length);
      s.x.forEach((v, i) => (out[pos.get(v)!] = i));
      return out;
    };
  }
  const markers: Marker[] = [];
  const plotted: (number | null | undefined)[][] = [];
  const raw: (Value | undefined)[][] = [];
  series.forEach((s, si) => {
    const idx = index(s);
    const p: (number | null | undefined)[] = new Array(x.length);
    const r: (Value | undefined)[] = new Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const j = idx[i];
      if (j === undefined) continue;
      const v = s.y[j] ?? null;
      r[i] = v;
      if (v === null) p[i] = null;
      else {
        const kind = kindOf(v, log);
        if (kind) {
          p[i] = null;
          markers.push({ series: si, x: x[i]!, kind });
        } else p[i] = v;
      }
    }
    plotted.push(p);
    raw.push(r);
  });
  return { x, plotted, raw, markers };
}

export interface LineChartSpec {
  id: string;
  title: string;
  log?: boolean;
  /** Format a value for the axis and legend (default fmtValue). */
  format?: (v: number) => string;
  height?: number;
}

export class LineChart {
  private u: uPlot | null = null;
  private shape = '';
  private data: Aligned = { x: [], plotted: [], raw: [], markers: [] };
  private refs: readonly Reference[] = [];
  private colors: string[] = [];
  private labels: string[] = [];

  constructor(
    private readonly root: HTMLElement,
    readonly spec: LineChartSpec,
    private readonly zoom: ZoomSync,
  ) {}

  update(series: readonly LineSeries[], refs: readonly Reference[] = []): void {
    this.data = align(series, this.spec.log ?? false);
    this.refs = refs;
    this.colors = series.map((s) => s.color);
    this.labels = series.map((s) => s.label);
    const shape = JSON.stringify(series.map((s) => [s.label, s.color, s.dash, s.points, s.pointsOnly]));
    const aligned: uPlot.AlignedData = [this.data.x, ...this.data.plotted];
    if (!this.u || shape !== this.shape) {
      this.shape = shape;
      this.build(series, aligned);
      return;
    }
    const zoomed = this.zoom.range;
    this.zoom.applying = true;
    this.u.setData(aligned, zoomed === null);
    if (zoomed) this.u.setScale('x', zoomed);
    this.zoom.applying = false;
  }

  resize(width: number): void {
    this.u?.setSize({ width, height: this.spec.height ?? 220 });
  }

  contents(): ChartContents {
    const x = this.data.x;
    return {
      id: this.spec.id,
      title: this.spec.title,
      x: this.u ? [...(this.u.data[0] as number[])] : x,
      series: this.labels.map((label, i) => ({ label, plotted: this.u ? [...(this.u.data[i + 1] as (number | null | undefined)[])] : [], raw: this.data.raw[i] ?? [] })),
      markers: this.data.markers.map((m) => ({ series: this.labels[m.series]!, x: m.x, kind: m.kind })),
    };
  }

  private fullRange(): { min: number; max: number } | null {
    const x = this.data.x;
    return x.length ? { min: x[0]!, max: x[x.length - 1]! } : null;
  }

  private build(series: readonly LineSeries[], aligned: uPlot.AlignedData): void {
    this.u?.destroy();
    if (this.u) this.zoom.members.delete(this.u);
    const fmt = this.spec.format ?? fmtValue;
    const log = this.spec.log ?? false;
    const opts: uPlot.Options = {
      width: Math.max(280, this.root.clientWidth - 24),
      height: this.spec.height ?? 220,
      legend: { live: true },
      cursor: { sync: { key: 'steps' }, drag: { x: true, y: false } },
      scales: {
        x: { time: false },
        y: {
          distr: log ? 3 : 1,
          // Headroom for the non-finite band, so a marker never sits on a real value.
          range: (u, min, max) => {
            if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return log ? [1, 10] : [0, 1];
            if (log) {
              const [lo, hi] = uPlot.rangeLog(min, max, 10, true) as [number, number];
              return this.data.markers.length ? [lo, hi * 3] : [lo, hi];
            }
            const [lo, hi] = uPlot.rangeNum(min, max, 0.1, true) as [number, number];
            return this.data.markers.length ? [lo, hi + (hi - lo) * 0.18] : [lo, hi];
          },
        },
      },
      axes: [{ label: 'step' }, { values: (_u, splits) => splits.map((v) => fmt(v)), size: 64 }],
      series: [
        { label: 'step', value: (_u, v) => (v == null ? '—' : String(v)) },
        ...series.map((s, si) => ({
          label: s.label,
          stroke: s.color,
          // 1 px by default: a fractional width rasterises several times slower (bench/results/dashboard.md).
          width: s.width ?? 1,
          dash: s.dash,
          spanGaps: false,
          points: { show: (s.points ?? false) || (s.pointsOnly ?? false), size: s.pointsOnly ? 8 : 5 },
          ...(s.pointsOnly ? { paths: () => null } : {}),
          value: (_u: uPlot, _v: number, _si: number, idx: number | null) => (idx === null ? '—' : fmtValue(this.data.raw[si]?.[idx] ?? null)),
        })),
      ],
      hooks: {
        draw: [(u) => this.drawOverlay(u)],
        setScale: [(u, key) => key === 'x' && this.zoom.changed(u, this.fullRange())],
      },
    };
    const title = document.createElement('div');
    this.root.replaceChildren(title);
    title.className = 'chart-title';
    title.textContent = this.spec.title + (log ? ' (log)' : '');
    this.u = new uPlot(opts, aligned, this.root);
    this.zoom.members.add(this.u);
    if (this.zoom.range) {
      this.zoom.applying = true;
      this.u.setScale('x', this.zoom.range);
      this.zoom.applying = false;
    }
  }

  /** Reference lines, then the non-finite band and its markers, on top of the series. */
  private drawOverlay(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const px = uPlot.pxRatio;
    ctx.save();
    ctx.font = `${11 * px}px system-ui, sans-serif`;
    for (const r of this.refs) {
      const y = u.valToPos(r.y, 'y', true);
      if (!(y >= top && y <= top + height)) continue;
      ctx.strokeStyle = '#666';
      ctx.setLineDash([3 * px, 3 * px]);
      ctx.lineWidth = px;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = '#555';
      ctx.textAlign = 'right';
      ctx.fillText(r.label, left + width - 4 * px, y - 3 * px);
    }
    const markers = this.data.markers;
    if (markers.length) {
      const band = BAND_CSS * px;
      ctx.fillStyle = 'rgba(214, 39, 40, 0.10)';
      ctx.fillRect(left, top, width, band);
      ctx.fillStyle = BAD;
      ctx.textAlign = 'left';
      ctx.fillText('NaN/Inf', left + 3 * px, top + band - 3 * px);
      const seen = new Map<number, number>();
      for (const m of markers) {
        const x = u.valToPos(m.x, 'x', true);
        if (!(x >= left && x <= left + width)) continue;
        // Series bad at the same step sit side by side, not on top of each other.
        const k = seen.get(Math.round(x)) ?? 0;
        seen.set(Math.round(x), k + 1);
        const cx = x + k * 8 * px;
        const cy = top + band / 2;
        const r = 4 * px;
        if (k === 0) {
          ctx.strokeStyle = 'rgba(214, 39, 40, 0.35)';
          ctx.lineWidth = px;
          ctx.beginPath();
          ctx.moveTo(x, top + band);
          ctx.lineTo(x, top + height);
          ctx.stroke();
        }
        ctx.strokeStyle = this.colors[m.series] ?? BAD;
        ctx.lineWidth = 2 * px;
        ctx.beginPath();
        ctx.moveTo(cx - r, cy - r);
        ctx.lineTo(cx + r, cy + r);
        ctx.moveTo(cx - r, cy + r);
        ctx.lineTo(cx + r, cy - r);
        ctx.stroke();
      }
    }
    ctx.restore();
  }
}
