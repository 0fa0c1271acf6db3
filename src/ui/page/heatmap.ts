/**
 * Per-layer expert load over steps as a heatmap: one row per (layer, expert), layer 0 on top, one
 * column per step (steps averaged into a pixel column when there are more steps than pixels; a
 * step as wide as its cell [s - 0.5, s + 0.5) when zoomed in, cellColumns).
 * uPlot supplies the axes, the shared cursor and x zoom; the cells are one image drawn in its draw
 * hook. A NaN load is bright red, never a colour of the scale; a step with no record is grey.
 */
/// <reference lib="dom" />
import uPlot from 'uplot';
import type { ZoomSync } from './line-chart.ts';
import type { Value } from './store.ts';
import { fmtValue } from './format.ts';

// matplotlib's viridis at 9 stops: perceptually even, readable in grey, and free of red.
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];
const NAN_RGB = [255, 0, 0] as const;
const EMPTY_RGB = [224, 224, 224] as const;

function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** 256-entry lookup over share 0..1 on a square-root scale: 1/E (balanced) sits mid-scale for small E. */
const LUT: Uint8Array = (() => {
  const stops = VIRIDIS.map(rgb);
  const out = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(stops[k]![c]! * (1 - f) + stops[k + 1]![c]! * f);
  }
  return out;
})();

export function shareToLut(v: number): number {
  return Math.max(0, Math.min(255, Math.round(Math.sqrt(Math.max(0, Math.min(1, v))) * 255)));
}

export function colorBarCss(): string {
  const stops: string[] = [];
  for (let i = 0; i <= 10; i++) {
    const v = (i / 10) ** 2; // the bar is even in sqrt(share), as the cells
    const k = shareToLut(v) * 3;
    stops.push(`rgb(${LUT[k]}, ${LUT[k + 1]}, ${LUT[k + 2]}) ${i * 10}%`);
  }
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

export interface HeatmapContents {
  label: string;
  steps: number[];
  layers: number;
  experts: number;
  /** [layer][expert][i], as drawn. */
  load: Value[][][];
  /**
   * The last image drawn: columns x rows, how many of its columns are grey ("no record") although
   * the step under them was logged (0 unless the pixel mapping is wrong), and the x range shown.
   */
  drawn: { columns: number; rows: number; emptyLoggedColumns: number; range: { min: number; max: number } } | null;
  events: HeatmapEvent[];
}

/** A finding about a layer, marked on that layer's band at its first step. */
export interface HeatmapEvent {
  x: number;
  layer: number;
  label: string;
  color: string;
}

/**
 * Which steps each image column shows, for `steps` (sorted) on the x range [lo, lo + span] drawn
 * `pixels` wide. A step covers [s - 0.5, s + 0.5) on the axis, as the cursor and zoom read it.
 * - Fewer steps than pixels: one column per pixel, showing the step whose cell holds the pixel's
 *   centre (so a step is as wide as its cell, and no column falls between two steps).
 * - More: the steps are averaged into pixel columns, each step in the column its value falls in.
 * Returns per column the index range [from, to) into `steps`.
 */
export function cellColumns(steps: readonly number[], lo: number, span: number, pixels: number): { columns: number; from: Int32Array; to: Int32Array } {
  const columns = Math.max(1, pixels);
  const from = new Int32Array(columns);
  const to = new Int32Array(columns);
  const perColumn = span / columns;
  let j = 0;
  for (let c = 0; c < columns; c++) {
    if (perColumn < 1) {
      // The step whose cell holds this pixel's centre, if it was logged.
      const centre = lo + (c + 0.5) * perColumn;
      while (j < steps.length && steps[j]! + 0.5 <= centre) j++;
      const hit = j < steps.length && steps[j]! - 0.5 <= centre;
      from[c] = j;
      to[c] = hit ? j + 1 : j;
    } else {
      const end = lo + (c + 1) * perColumn;
      from[c] = j;
      while (j < steps.length && (steps[j]! < end || c === columns - 1)) j++;
      to[c] = j;
    }
  }
  return { columns, from, to };
}

export class Heatmap {
  private u: uPlot | null = null;
  private steps: number[] = [];
  private load: Value[][][] = [];
  private layers = 0;
  private experts = 0;
  private drawn: HeatmapContents['drawn'] = null;
  private events: HeatmapEvent[] = [];
  private readonly canvas = document.createElement('canvas');
  private readonly plotRoot = document.createElement('div');
  private readonly readout = document.createElement('div');

  constructor(
    private readonly root: HTMLElement,
    private readonly label: string,
    private readonly zoom: ZoomSync,
  ) {
    const title = document.createElement('div');
    title.className = 'chart-title';
    title.textContent = `Expert load per layer — ${label}`;
    this.readout.className = 'readout';
    this.readout.textContent = 'hover a cell: step, layer, expert, share of the layer’s routed tokens';
    root.replaceChildren(title, this.plotRoot, this.readout);
  }

  update(steps: number[], load: Value[][][], layers: number, experts: number, events: HeatmapEvent[] = []): void {
    this.steps = steps;
    this.events = events;
    this.load = load;
    const shapeChanged = layers !== this.layers || experts !== this.experts;
    this.layers = layers;
    this.experts = experts;
    const data: uPlot.AlignedData = [steps, new Array<null>(steps.length).fill(null)];
    if (!this.u || shapeChanged) return this.build(data);
    this.zoom.setData(this.u, data);
  }

  resize(width: number): void {
    this.u?.setSize({ width, height: this.height() });
  }

  contents(): HeatmapContents {
    return {
      label: this.label,
      steps: [...this.steps],
      layers: this.layers,
      experts: this.experts,
      load: this.load.map((l) => l.map((e) => [...e])),
      drawn: this.drawn,
      events: [...this.events],
    };
  }

  private rows(): number {
    return this.layers * this.experts;
  }

  private height(): number {
    return Math.max(160, Math.min(720, this.rows() * 4)) + 50;
  }

  private build(data: uPlot.AlignedData): void {
    if (this.u) {
      this.zoom.members.delete(this.u);
      this.u.destroy();
    }
    const rows = this.rows();
    const E = this.experts;
    const opts: uPlot.Options = {
      width: Math.max(280, this.root.clientWidth - 24),
      height: this.height(),
      legend: { show: false },
      cursor: { sync: { key: 'steps' }, drag: { x: true, y: false }, points: { show: false } },
      scales: { x: { time: false }, y: { auto: false, range: [0, Math.max(1, rows)] } },
      axes: [
        { label: 'step' },
        {
          size: 48,
          // One label per layer at its band's middle; thinned so labels keep ~14 px apart.
          splits: (u) => {
            const every = Math.max(1, Math.ceil(this.layers / Math.max(1, u.bbox.height / uPlot.pxRatio / 14)));
            const s: number[] = [];
            for (let l = 0; l < this.layers; l += every) s.push(rows - (l * E + E / 2));
            return s;
          },
          values: (_u, splits) => splits.map((v) => `L${Math.round((rows - v - E / 2) / E)}`),
          grid: { show: false },
        },
      ],
      series: [{ label: 'step' }, { label: 'load', paths: () => null, points: { show: false } }],
      hooks: {
        draw: [(u) => this.paint(u)],
        setScale: [
          (u, key) => key === 'x' && this.zoom.changed(u, this.steps.length ? { min: this.steps[0]!, max: this.steps[this.steps.length - 1]! } : null),
        ],
        setCursor: [(u) => this.hover(u)],
      },
    };
    this.u = new uPlot(opts, data, this.plotRoot);
    this.zoom.join(this.u);
  }

  /** Index range [i0, i1) of the steps whose cells [s - 0.5, s + 0.5) reach into [min, max]. */
  private visible(min: number, max: number): [number, number] {
    const s = this.steps;
    let i0 = 0;
    while (i0 < s.length && s[i0]! + 0.5 <= min) i0++;
    let i1 = i0;
    while (i1 < s.length && s[i1]! - 0.5 < max) i1++;
    return [i0, i1];
  }

  private paint(u: uPlot): void {
    const rows = this.rows();
    const { min, max } = u.scales.x;
    if (!rows || !this.steps.length || min === undefined || max === undefined) return;
    const { left, top, width, height } = u.bbox;
    const [i0, i1] = this.visible(min, max);
    if (i1 <= i0) return;
    const lo = min;
    const span = Math.max(1e-9, max - lo);
    const cols = cellColumns(this.steps.slice(i0, i1), lo, span, Math.max(1, Math.round(width)));
    const sums = new Float64Array(cols.columns * rows);
    const counts = new Uint32Array(cols.columns * rows);
    const bad = new Uint8Array(cols.columns * rows);
    const E = this.experts;
    for (let c = 0; c < cols.columns; c++)
      for (let j = cols.from[c]!; j < cols.to[c]!; j++) {
        const i = i0 + j;
        for (let l = 0; l < this.layers; l++) {
          const layer = this.load[l];
          for (let e = 0; e < E; e++) {
            const v = layer?.[e]?.[i];
            if (v === null || v === undefined) continue;
            const k = c * rows + l * E + e;
            if (Number.isFinite(v)) {
              sums[k] += v;
              counts[k]++;
            } else bad[k] = 1;
          }
        }
      }
    this.canvas.width = cols.columns;
    this.canvas.height = rows;
    const g = this.canvas.getContext('2d')!;
    const img = g.createImageData(cols.columns, rows);
    let empty = 0;
    for (let c = 0; c < cols.columns; c++) {
      let emptyHere = false;
      for (let r = 0; r < rows; r++) {
        const k = c * rows + r;
        const o = (r * cols.columns + c) * 4;
        let px: readonly number[] = EMPTY_RGB;
        // A NaN anywhere in a column's steps wins: a NaN must not average away.
        if (bad[k]) px = NAN_RGB;
        else if (counts[k]) {
          const j = shareToLut(sums[k]! / counts[k]!) * 3;
          px = [LUT[j]!, LUT[j + 1]!, LUT[j + 2]!];
        } else emptyHere = true;
        img.data[o] = px[0]!;
        img.data[o + 1] = px[1]!;
        img.data[o + 2] = px[2]!;
        img.data[o + 3] = 255;
      }
      // Grey inside the logged steps' span: a column the mapping left without a step.
      const centre = lo + ((c + 0.5) / cols.columns) * span;
      if (emptyHere && centre >= this.steps[0]! - 0.5 && centre < this.steps[this.steps.length - 1]! + 0.5 && this.logged(Math.round(centre))) empty++;
    }
    g.putImageData(img, 0, 0);
    const ctx = u.ctx;
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.canvas, left, top, width, height);
    // Thin separators between layers.
    ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
    for (let l = 1; l < this.layers; l++) ctx.fillRect(left, top + (l * E * height) / rows - 0.5, width, Math.max(1, uPlot.pxRatio * 0.75));
    // Findings about a layer: a line across that layer's band at the step it was first seen.
    const px = uPlot.pxRatio;
    ctx.font = `${11 * px}px system-ui, sans-serif`;
    for (const ev of this.events) {
      const x = Math.round(u.valToPos(ev.x, 'x', true));
      if (!(x >= left - 1 && x <= left + width + 1) || ev.layer >= this.layers) continue;
      const y0 = top + (ev.layer * E * height) / rows;
      const h = (E * height) / rows;
      ctx.fillStyle = ev.color;
      ctx.fillRect(x - px, y0, 2 * px, h);
      ctx.fillStyle = '#fff';
      ctx.textAlign = 'left';
      ctx.fillText(ev.label, Math.min(x + 3 * px, left + width - ctx.measureText(ev.label).width - 2 * px), y0 + Math.min(h - 2 * px, 11 * px));
    }
    ctx.restore();
    this.drawn = { columns: cols.columns, rows, emptyLoggedColumns: empty, range: { min, max } };
  }

  /** Whether `step` has a record (binary search: steps are in order). */
  private logged(step: number): boolean {
    const s = this.steps;
    let a = 0;
    let b = s.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (s[m]! < step) a = m + 1;
      else b = m;
    }
    return s[a] === step;
  }

  private hover(u: uPlot): void {
    const { left, top, idx } = u.cursor;
    if (left === undefined || top === undefined || left < 0 || idx === null || idx === undefined) return;
    const rows = this.rows();
    const r = Math.floor((top / (u.bbox.height / uPlot.pxRatio)) * rows);
    if (r < 0 || r >= rows) return;
    const layer = Math.floor(r / this.experts);
    const expert = r % this.experts;
    const v = this.load[layer]?.[expert]?.[idx] ?? null;
    this.readout.textContent = `step ${this.steps[idx]} · layer ${layer} · expert ${expert}: share ${fmtValue(v)} (balanced ${fmtValue(1 / this.experts)})`;
  }
}
