/**
 * A uPlot line chart that never hides a non-finite value (as src/report/chart.ts for the static
 * reports): NaN / ±Inf (and values <= 0 on a log axis) break the line and are drawn as markers
 * in a red band at the top of the plot, and the legend prints them as "NaN", never as 0.
 *
 * As TensorBoard: a dense series can be smoothed (EMA, debiased; the raw line stays faint behind
 * it), the y axis can be switched to log per chart, and the legend names each line with its
 * dash. Hovering a step shows each series' value at that step or the last one before it (a
 * validation every 50 steps), never a later one. Findings are vertical markers (src/diagnose).
 */
/// <reference lib="dom" />
import uPlot from 'uplot';
import type { Value } from './store.ts';
import { fmtValue } from './format.ts';
import { ema } from './smooth.ts';

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
  /** Smoothed when the page's smoothing is on (default: dense lines yes, points no). */
  smooth?: boolean;
}

export interface Reference {
  y: number;
  label: string;
}

/** A vertical marker at a step, e.g. where a finding was first seen. */
export interface ChartEvent {
  x: number;
  label: string;
  color: string;
  /** Extra text on hover of the label (the finding's title). */
  title?: string;
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
  /** The y axis is logarithmic (the chart's toggle). */
  log: boolean;
  /** The EMA weight applied to the smoothed series (0: none). */
  smoothing: number;
  /** Why the chart is hidden for these runs, or null when it is shown. */
  hidden: string | null;
  x: number[];
  series: {
    label: string;
    color: string;
    dash: number[] | null;
    /** What is drawn: the smoothed line when smoothed. */
    plotted: (number | null | undefined)[];
    /** The logged values (the legend's, the faint line's). */
    raw: (Value | undefined)[];
    smoothed: boolean;
  }[];
  markers: { series: string; x: number; kind: MarkerKind }[];
  events: ChartEvent[];
  /** The y axis as last laid out: its tick labels, its width and the widest label (CSS px). */
  yAxis: { labels: string[]; size: number; widest: number };
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

  /** A new chart joins: it takes the current zoom, without passing it on as a user zoom. */
  join(u: uPlot): void {
    this.members.add(u);
    if (this.range) {
      this.applying = true;
      u.setScale('x', this.range);
      this.applying = false;
    }
  }

  /** New data for a member: kept at the current zoom (or fitted, when not zoomed). */
  setData(u: uPlot, data: uPlot.AlignedData): void {
    const zoomed = this.range;
    this.applying = true;
    u.setData(data, zoomed === null);
    if (zoomed) u.setScale('x', zoomed);
    this.applying = false;
  }

  /** Zoom every chart to [min, max] (null: every step), as a drag does. */
  set(range: { min: number; max: number } | null): void {
    this.range = range;
    this.applying = true;
    for (const o of this.members) {
      const x = o.data[0] as number[];
      if (range) o.setScale('x', range);
      else if (x.length) o.setScale('x', { min: x[0]!, max: x[x.length - 1]! });
    }
    this.applying = false;
  }
}

const BAND_CSS = 14;
const BAD = '#d62728';
const AXIS_FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif';

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

/** `color` at `alpha`: #rrggbb or hsl(...) as the palettes write them. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (hex) {
    const n = Number.parseInt(hex[1]!, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  const hsl = /^hsl\((.*)\)$/.exec(color);
  return hsl ? `hsla(${hsl[1]}, ${alpha})` : color;
}

/**
 * The data index a legend shows for series `yValues` when the cursor is on index `idx`: `idx`
 * itself when the series has a value there, else the last index before it that has one (a value
 * measured later is never shown as the value at the cursor); null when there is none.
 */
export function atOrBefore(yValues: ArrayLike<unknown>, idx: number): number | null {
  for (let j = Math.min(idx, yValues.length - 1); j >= 0; j--) if (yValues[j] !== undefined) return j;
  return null;
}

let measureCtx: CanvasRenderingContext2D | null = null;
function textWidth(s: string): number {
  measureCtx ??= document.createElement('canvas').getContext('2d');
  if (!measureCtx) return s.length * 7;
  measureCtx.font = AXIS_FONT;
  return measureCtx.measureText(s).width;
}

/** A legend label: a sample of the line (its colour and dash) and the name. */
function legendLabel(s: LineSeries): HTMLElement {
  const span = document.createElement('span');
  span.className = 'series-label';
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', '22');
  svg.setAttribute('height', '8');
  svg.setAttribute('class', 'line-sample');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'line');
  line.setAttribute('x1', '0');
  line.setAttribute('x2', '22');
  line.setAttribute('y1', '4');
  line.setAttribute('y2', '4');
  line.setAttribute('stroke', s.color);
  line.setAttribute('stroke-width', '2');
  if (s.dash?.length) line.setAttribute('stroke-dasharray', s.dash.join(' '));
  if (s.pointsOnly) line.setAttribute('stroke-dasharray', '0 6');
  svg.append(line);
  if (s.points || s.pointsOnly) {
    const dot = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    dot.setAttribute('cx', '11');
    dot.setAttribute('cy', '4');
    dot.setAttribute('r', '3');
    dot.setAttribute('fill', s.color);
    svg.append(dot);
  }
  span.append(svg, document.createTextNode(s.label));
  return span;
}

export interface LineChartSpec {
  id: string;
  title: string;
  /** Log y axis at first (the chart's toggle changes it). */
  log?: boolean;
  /** Format a value for the axis and legend (default fmtValue). */
  format?: (v: number) => string;
  /** Tick increments for the y axis (e.g. binary ones for bytes); uPlot's decimal ones by default. */
  incrs?: number[];
  height?: number;
}

export class LineChart {
  private u: uPlot | null = null;
  private shape = '';
  private data: Aligned = { x: [], plotted: [], raw: [], markers: [] };
  private smoothedPlot: (number | null | undefined)[][] = [];
  private refs: readonly Reference[] = [];
  private events: readonly ChartEvent[] = [];
  private series: readonly LineSeries[] = [];
  /** uPlot series index of each LineSeries, and of its faint raw line (null: none). */
  private mainIdx: number[] = [];
  private faintIdx: (number | null)[] = [];
  private log: boolean;
  private smoothing = 0;
  private hiddenReason: string | null = null;
  private yAxis = { labels: [] as string[], size: 0, widest: 0 };
  private readonly title = document.createElement('div');
  private readonly logToggle = document.createElement('input');
  private readonly plotRoot = document.createElement('div');

  constructor(
    private readonly root: HTMLElement,
    readonly spec: LineChartSpec,
    private readonly zoom: ZoomSync,
  ) {
    this.log = spec.log ?? false;
    const head = document.createElement('div');
    head.className = 'chart-head';
    this.title.className = 'chart-title';
    this.title.textContent = spec.title;
    const label = document.createElement('label');
    label.className = 'log-toggle';
    this.logToggle.type = 'checkbox';
    this.logToggle.checked = this.log;
    this.logToggle.dataset.testid = `log-${spec.id}`;
    this.logToggle.addEventListener('change', () => this.setLog(this.logToggle.checked));
    label.append(this.logToggle, ' log scale');
    head.append(this.title, label);
    root.replaceChildren(head, this.plotRoot);
  }

  /** The y axis: log or linear (rebuilds the chart; the x zoom stays). */
  setLog(log: boolean): void {
    if (log === this.log) return;
    this.log = log;
    this.logToggle.checked = log;
    this.update(this.series, this.refs, this.events, this.smoothing);
  }

  /** Hide the chart with a reason (it carries no information for these runs), or show it (null). */
  setHidden(reason: string | null): void {
    const wasHidden = this.hiddenReason !== null;
    this.hiddenReason = reason;
    this.root.hidden = reason !== null;
    if (wasHidden && reason === null && this.u) this.resize(this.root.clientWidth - 24);
  }

  get hidden(): string | null {
    return this.hiddenReason;
  }

  update(series: readonly LineSeries[], refs: readonly Reference[] = [], events: readonly ChartEvent[] = [], smoothing = 0): void {
    this.series = series;
    this.data = align(series, this.log);
    this.refs = refs;
    this.events = events;
    this.smoothing = smoothing;
    const smooths = series.map((s) => smoothing > 0 && (s.smooth ?? !(s.points || s.pointsOnly)));
    this.smoothedPlot = this.data.plotted.map((p, i) => (smooths[i] ? ema(p, smoothing) : p));
    // The faint raw line goes before its smoothed line, so the smoothed one is drawn on top.
    const columns: (number | null | undefined)[][] = [];
    this.mainIdx = [];
    this.faintIdx = [];
    series.forEach((_, i) => {
      if (smooths[i]) {
        columns.push(this.data.plotted[i]!);
        this.faintIdx.push(columns.length);
      } else this.faintIdx.push(null);
      columns.push(this.smoothedPlot[i]!);
      this.mainIdx.push(columns.length);
    });
    const shape = JSON.stringify([this.log, smooths, series.map((s) => [s.label, s.color, s.dash, s.points, s.pointsOnly])]);
    const aligned: uPlot.AlignedData = [this.data.x, ...columns];
    if (!this.u || shape !== this.shape) {
      this.shape = shape;
      this.build(aligned);
      return;
    }
    this.zoom.setData(this.u, aligned);
  }

  resize(width: number): void {
    this.u?.setSize({ width: Math.max(280, width), height: this.spec.height ?? 220 });
  }

  contents(): ChartContents {
    const x = this.u ? [...(this.u.data[0] as number[])] : this.data.x;
    return {
      id: this.spec.id,
      title: this.spec.title,
      log: this.log,
      smoothing: this.smoothing,
      hidden: this.hiddenReason,
      x,
      series: this.series.map((s, i) => ({
        label: s.label,
        color: s.color,
        dash: s.dash ?? null,
        plotted: this.u ? [...(this.u.data[this.mainIdx[i]!] as (number | null | undefined)[])] : [],
        raw: this.data.raw[i] ?? [],
        smoothed: this.faintIdx[i] !== null,
      })),
      markers: this.data.markers.map((m) => ({ series: this.series[m.series]!.label, x: m.x, kind: m.kind })),
      events: [...this.events],
      yAxis: { ...this.yAxis, labels: [...this.yAxis.labels] },
    };
  }

  /** Put the cursor on step `x` (as a hover does) and read the legend: label and value text per series. */
  hover(x: number): { label: string; value: string }[] {
    const u = this.u;
    if (!u) return [];
    u.setCursor({ left: u.valToPos(x, 'x'), top: u.bbox.height / uPlot.pxRatio / 2 });
    return this.series.map((s, i) => {
      const row = u.root.querySelectorAll<HTMLElement>('.u-legend tr.u-series')[this.mainIdx[i]!];
      return { label: s.label, value: row?.querySelector('.u-value')?.textContent ?? '' };
    });
  }

  private fullRange(): { min: number; max: number } | null {
    const x = this.data.x;
    return x.length ? { min: x[0]!, max: x[x.length - 1]! } : null;
  }

  private build(aligned: uPlot.AlignedData): void {
    if (this.u) {
      this.zoom.members.delete(this.u);
      this.u.destroy();
    }
    const fmt = this.spec.format ?? fmtValue;
    const log = this.log;
    const x = () => this.data.x;
    // The legend's value: the logged value (never the smoothed one, never 0 for NaN), with the step
    // it was logged at when that is before the cursor's.
    const legendValue = (i: number) => (u: uPlot, _v: number, _si: number, idx: number | null) => {
      if (idx === null || idx === undefined) return '—';
      const v = this.data.raw[i]?.[idx];
      if (v === undefined) return '—';
      const text = v === null ? '—' : Number.isFinite(v) ? fmt(v) : fmtValue(v);
      const smoothed = this.smoothedPlot[i]?.[idx];
      const withSmooth = this.faintIdx[i] !== null && typeof smoothed === 'number' ? `${fmt(smoothed)} (raw ${text})` : text;
      const cursorIdx = u.cursor.idx;
      return cursorIdx !== null && cursorIdx !== undefined && cursorIdx !== idx ? `${withSmooth} @ step ${x()[idx]}` : withSmooth;
    };
    const uSeries: uPlot.Series[] = [{ label: 'step', value: (_u, v) => (v == null ? '—' : String(v)) }];
    this.series.forEach((s, i) => {
      if (this.faintIdx[i] !== null)
        uSeries.push({
          label: `${s.label} (raw)`,
          stroke: withAlpha(s.color, 0.22),
          width: 1,
          dash: s.dash,
          spanGaps: false,
          points: { show: false },
          value: legendValue(i),
          class: 'faint',
        });
      uSeries.push({
        label: legendLabel(s) as unknown as string,
        stroke: s.color,
        // 1 px by default: a fractional width rasterises several times slower (bench/results/dashboard.md).
        width: s.width ?? 1,
        dash: s.dash,
        spanGaps: false,
        points: { show: (s.points ?? false) || (s.pointsOnly ?? false), size: s.pointsOnly ? 8 : 5 },
        ...(s.pointsOnly ? { paths: () => null } : {}),
        value: legendValue(i),
      });
    });
    const opts: uPlot.Options = {
      width: Math.max(280, this.root.clientWidth - 24),
      height: this.spec.height ?? 220,
      legend: { live: true, markers: { show: false } },
      cursor: {
        sync: { key: 'steps' },
        drag: { x: true, y: false },
        // At or before the cursor: a sparse series (validation) shows its last value so far.
        dataIdx: (u, si, idx) => (si === 0 ? idx : atOrBefore(u.data[si]!, idx)),
      },
      scales: {
        x: { time: false },
        y: {
          distr: log ? 3 : 1,
          // Headroom for the non-finite band, so a marker never sits on a real value.
          range: (_u, min, max) => {
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
      axes: [
        { label: 'step' },
        {
          font: AXIS_FONT,
          // A log axis leaves some splits unlabelled (null).
          values: (_u, splits) => splits.map((v) => (v === null || v === undefined ? null : fmt(v))) as string[],
          ...(this.spec.incrs && !log ? { incrs: this.spec.incrs } : {}),
          // As wide as the widest label: "28.6 MiB" is never cut to "8.6 MiB".
          size: (_u, values) => {
            const labels = (values ?? []).filter((v) => v !== null && v !== undefined && v !== '').map(String);
            const widest = Math.max(0, ...labels.map(textWidth));
            const size = Math.max(40, Math.ceil(widest) + 22);
            this.yAxis = { labels, size, widest };
            return size;
          },
        },
      ],
      series: uSeries,
      hooks: {
        draw: [(u) => this.drawOverlay(u)],
        setScale: [(u, key) => key === 'x' && this.zoom.changed(u, this.fullRange())],
        // A click on a smoothed line's legend entry hides (or shows) its faint raw line too.
        setSeries: [
          (u, si, o) => {
            const k = this.mainIdx.indexOf(si ?? -1);
            const faint = k >= 0 ? this.faintIdx[k] : null;
            if (faint !== null && faint !== undefined && o.show !== undefined && u.series[faint]!.show !== o.show) u.setSeries(faint, { show: o.show });
          },
        ],
      },
    };
    this.title.textContent = this.spec.title;
    this.plotRoot.replaceChildren();
    this.u = new uPlot(opts, aligned, this.plotRoot);
    // The faint raw lines have no legend row of their own: the smoothed line's row shows both values.
    const rows = this.u.root.querySelectorAll<HTMLElement>('.u-legend tr.u-series');
    for (const k of this.faintIdx) if (k !== null && rows[k]) rows[k].style.display = 'none';
    this.zoom.join(this.u);
  }

  /** Reference lines, finding markers, then the non-finite band and its markers, on top of the series. */
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
    // Findings: a vertical line at the step each was first seen, its name at the bottom (labels
    // that would overlap go one row up).
    const rowsUsed: [number, number][][] = [];
    for (const e of this.events) {
      const x = Math.round(u.valToPos(e.x, 'x', true));
      if (!(x >= left - 1 && x <= left + width + 1)) continue;
      ctx.strokeStyle = e.color;
      ctx.lineWidth = 2 * px;
      ctx.setLineDash([4 * px, 3 * px]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.setLineDash([]);
      const text = e.label;
      const w = ctx.measureText(text).width;
      const tx = Math.max(left, Math.min(x + 3 * px, left + width - w - 2 * px));
      let k = 0;
      while ((rowsUsed[k] ?? []).some(([a, b]) => tx < b + 4 * px && tx + w > a - 4 * px)) k++;
      (rowsUsed[k] ??= []).push([tx, tx + w]);
      const ty = top + height - (4 + k * 13) * px;
      ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
      ctx.fillRect(tx - px, ty - 10 * px, w + 2 * px, 12 * px);
      ctx.fillStyle = e.color;
      ctx.textAlign = 'left';
      ctx.fillText(text, tx, ty);
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
        ctx.strokeStyle = this.series[m.series]?.color ?? BAD;
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
