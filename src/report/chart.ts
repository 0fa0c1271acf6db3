/**
 * Standalone SVG line charts for run reports, without dependencies. The one rule that matters:
 * a non-finite value is shown, never hidden. NaN / +Inf / -Inf points are drawn as markers in a
 * red band at the top of the plot (the line breaks there), and on a log scale values <= 0 go to a
 * band at the bottom: neither is plotted as 0 or dropped (docs/DESIGN.md §7.4).
 */

export type Point = readonly [x: number, y: number];

export interface Series {
  name: string;
  points: readonly Point[];
  color?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logY?: boolean;
  width?: number;
  height?: number;
  /** Axis bounds; when left out they come from the data, widened to nice ticks. */
  yMin?: number;
  yMax?: number;
  xMin?: number;
  xMax?: number;
  /** Vertical markers, e.g. "aux warm-up ends". */
  annotations?: readonly { x: number; label: string }[];
  /**
   * Where the annotations' labels go: 'inside' the plot at its top (default), or 'above' it, in a
   * strip of their own over the frame, where no data can be under them.
   */
  annotationLabels?: 'inside' | 'above';
  /** The x values are times, milliseconds since the epoch (UTC): calendar ticks and date labels. */
  xTime?: boolean;
  /** Horizontal reference lines, e.g. balanced share 1/E or max entropy ln E. */
  references?: readonly { y: number; label: string }[];
  /** At least this many legend rows of space, so side-by-side charts line up. */
  legendRows?: number;
  /** Leave room for the bands even without such points, so side-by-side charts line up. */
  reserveBands?: { nonFinite?: boolean; nonPositive?: boolean };
}

// category10 without its red, so red stays reserved for non-finite markers.
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const BAD = '#d62728';
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const BAND = 18;

export function seriesColor(i: number): string {
  return i < PALETTE.length ? PALETTE[i]! : `hsl(${Math.round((i * 137.5) % 360)}, 55%, 42%)`;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Label of a non-finite value, as the logger spells it. */
export function nonFiniteLabel(v: number): 'NaN' | '+Inf' | '-Inf' {
  return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

function niceStep(rough: number): number {
  const p = 10 ** Math.floor(Math.log10(rough));
  const f = rough / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

export interface Ticks {
  lo: number;
  hi: number;
  ticks: number[];
}

/** Linear ticks at 1/2/2.5/5 x 10^k; the domain widens to whole ticks unless fixed. */
export function niceTicks(min: number, max: number, target = 5, fixed: { lo?: boolean; hi?: boolean } = {}): Ticks {
  if (!(max > min)) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceTicks(min - pad, max + pad, target, {});
  }
  const step = niceStep((max - min) / target);
  const lo = fixed.lo ? min : Math.floor(min / step + 1e-9) * step;
  const hi = fixed.hi ? max : Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(roundTo(k * step, step));
  return { lo, hi, ticks };
}

function roundTo(v: number, step: number): number {
  const d = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  return Number(v.toFixed(Math.min(d, 20)));
}

/** Log ticks: decades, plus 2x and 5x when the range spans few decades. Requires 0 < min <= max. */
export function logTicks(min: number, max: number, fixed: { lo?: boolean; hi?: boolean } = {}): Ticks {
  let a = Math.floor(Math.log10(min) + 1e-9);
  let b = Math.ceil(Math.log10(max) - 1e-9);
  if (b <= a) b = a + 1;
  const lo = fixed.lo ? min : 10 ** a;
  const hi = fixed.hi ? max : 10 ** b;
  if (fixed.lo) a = Math.floor(Math.log10(lo));
  const decades = b - a;
  const every = Math.max(1, Math.ceil(decades / 8));
  const mult = decades <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let k = a; k <= b; k += every) {
    for (const m of mult) {
      const v = Number((m * 10 ** k).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push(v);
    }
  }
  return { lo, hi, ticks };
}

/** Compact tick label: 0.001, 250, 1.5e+6, 2e-5. */
export function formatTick(v: number): string {
  if (!Number.isFinite(v)) return nonFiniteLabel(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential().replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(6)));
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Tick steps for a time axis: fixed lengths up to weeks, then calendar months and years. */
const TIME_STEPS: { ms: number; months?: number }[] = [
  ...[1, 5, 15, 30].map((n) => ({ ms: n * SECOND })),
  ...[1, 5, 15, 30].map((n) => ({ ms: n * MINUTE })),
  ...[1, 3, 6, 12].map((n) => ({ ms: n * HOUR })),
  ...[1, 2, 7, 14].map((n) => ({ ms: n * DAY })),
  ...[1, 2, 3, 6].map((n) => ({ ms: n * 30.44 * DAY, months: n })),
  ...[1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000].map((n) => ({ ms: n * 365.25 * DAY, months: 12 * n })),
];

const pad2 = (n: number) => String(n).padStart(2, '0');

/** A time as its tick label needs it at this step: 2014, 2014-03, 2014-03-05, 03-05 12:00, 12:00:30 (UTC). */
export function formatTime(ms: number, stepMs: number): string {
  if (!Number.isFinite(ms)) return nonFiniteLabel(ms);
  const d = new Date(ms);
  const ymd = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  if (stepMs >= 360 * DAY) return String(d.getUTCFullYear());
  if (stepMs >= 28 * DAY) return ymd.slice(0, 7);
  if (stepMs >= DAY) return ymd;
  if (stepMs >= MINUTE) return `${ymd.slice(5)} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
}

/** Ticks at calendar boundaries (UTC) inside [lo, hi], about `target` of them, with their labels. */
export function timeTicks(lo: number, hi: number, target = 5): { ticks: number[]; labels: string[]; stepMs: number } {
  const span = Math.max(hi - lo, SECOND);
  const step = TIME_STEPS.find((s) => span / s.ms <= target) ?? TIME_STEPS[TIME_STEPS.length - 1]!;
  const ticks: number[] = [];
  if (step.months) {
    const d = new Date(lo);
    let y = d.getUTCFullYear();
    let m = d.getUTCMonth();
    // The first boundary at or after lo, on a multiple of the step (January for years).
    const total = y * 12 + m + (Date.UTC(y, m, 1) < lo ? 1 : 0);
    let k = Math.ceil(total / step.months) * step.months;
    for (;;) {
      y = Math.floor(k / 12);
      m = k % 12;
      const t = Date.UTC(y, m, 1);
      if (t > hi) break;
      if (t >= lo) ticks.push(t);
      k += step.months;
    }
  } else {
    for (let t = Math.ceil(lo / step.ms) * step.ms; t <= hi; t += step.ms) ticks.push(t);
  }
  return { ticks, labels: ticks.map((t) => formatTime(t, step.ms)), stepMs: step.ms };
}

function f1(v: number): string {
  return v.toFixed(1);
}

interface Scale {
  (v: number): number;
}

function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const l0 = Math.log10(d0);
  const l1 = Math.log10(d1);
  return (v) => r0 + ((Math.log10(v) - l0) / (l1 - l0)) * (r1 - r0);
}

/** Where a point goes: the plot, the non-finite band at the top, or the "<= 0" band of a log chart. */
type Placement = 'plot' | 'nonfinite' | 'nonpositive';

function place(y: number, logY: boolean): Placement {
  if (!Number.isFinite(y)) return 'nonfinite';
  if (logY && y <= 0) return 'nonpositive';
  return 'plot';
}

/** Which bands a chart of these series needs. */
export function bandsNeeded(series: readonly Series[], logY = false): { nonFinite: boolean; nonPositive: boolean } {
  const out = { nonFinite: false, nonPositive: false };
  for (const s of series)
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x)) continue;
      const p = place(y, logY);
      if (p === 'nonfinite') out.nonFinite = true;
      else if (p === 'nonpositive') out.nonPositive = true;
    }
  return out;
}

/** Finite y range of the plottable points (positive only on a log scale); null when there are none. */
export function dataRange(series: readonly Series[], logY = false): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const s of series)
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || place(y, logY) !== 'plot') continue;
      min = Math.min(min, y);
      max = Math.max(max, y);
    }
  return min <= max ? { min, max } : null;
}

/** Finite x range over all points; null when there are none. */
export function xRangeOf(series: readonly Series[]): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const s of series)
    for (const [x] of s.points) {
      if (!Number.isFinite(x)) continue;
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
  return min <= max ? { min, max } : null;
}

function markerPath(kind: 'NaN' | '+Inf' | '-Inf', x: number, y: number): string {
  const r = 4.5;
  if (kind === 'NaN') return `M${f1(x - r)},${f1(y - r)}L${f1(x + r)},${f1(y + r)}M${f1(x - r)},${f1(y + r)}L${f1(x + r)},${f1(y - r)}`;
  if (kind === '+Inf') return `M${f1(x)},${f1(y - r)}L${f1(x + r)},${f1(y + r)}L${f1(x - r)},${f1(y + r)}Z`;
  return `M${f1(x)},${f1(y + r)}L${f1(x + r)},${f1(y - r)}L${f1(x - r)},${f1(y - r)}Z`;
}

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

const approxTextWidth = (s: string, px = 12) => s.length * px * 0.58;

export interface LegendItem {
  name: string;
  color: string;
  dashed: boolean;
  bad: number;
  nonPositive: number;
  width: number;
}

const LEFT = 72;
const RIGHT = 20;

/** Legend items in rows that fit the chart's width; a series with non-finite values says how many. */
export function legendLayout(series: readonly Series[], width = 640, logY = false): LegendItem[][] {
  const items: LegendItem[] = series.map((s, i) => {
    let bad = 0;
    let nonPositive = 0;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x)) continue;
      const p = place(y, logY);
      if (p === 'nonfinite') bad++;
      else if (p === 'nonpositive') nonPositive++;
    }
    const note = (bad ? ` ${bad} non-finite` : '') + (nonPositive ? ` ${nonPositive} ≤ 0` : '');
    return { name: s.name, color: s.color ?? seriesColor(i), dashed: s.dashed ?? false, bad, nonPositive, width: 30 + approxTextWidth(s.name + note) + 16 };
  });
  const rows: LegendItem[][] = [];
  let rowWidth = Infinity;
  for (const it of items) {
    if (rowWidth + it.width > width - LEFT - RIGHT) {
      rows.push([]);
      rowWidth = 0;
    }
    rows[rows.length - 1]!.push(it);
    rowWidth += it.width;
  }
  return rows;
}

export function lineChart(opts: LineChartOptions): string {
  const W = opts.width ?? 640;
  const H = opts.height ?? 360;
  const logY = opts.logY ?? false;
  const series = opts.series.map((s, i) => ({ ...s, color: s.color ?? seriesColor(i), dashed: s.dashed ?? false }));

  // Legend first: its rows decide the bottom margin.
  const legendRows = legendLayout(series, W, logY);
  const rowsShown = Math.max(legendRows.length, opts.legendRows ?? 0);
  const items = legendRows.flat();
  const labelsAbove = (opts.annotationLabels ?? 'inside') === 'above' && (opts.annotations ?? []).length > 0;
  const top = labelsAbove ? 58 : 40;
  const bottom = 46 + rowsShown * 18 + (rowsShown ? 6 : 0);
  const px0 = LEFT;
  const px1 = W - RIGHT;
  const py0 = top;
  const py1 = H - bottom;

  const anyBad = items.some((it) => it.bad > 0);
  const anyNonPositive = items.some((it) => it.nonPositive > 0);
  // The data area leaves room for the bands, so a marker never sits on a real value.
  const dy0 = anyBad || opts.reserveBands?.nonFinite ? py0 + BAND + 6 : py0;
  const dy1 = anyNonPositive || (logY && opts.reserveBands?.nonPositive) ? py1 - BAND - 6 : py1;

  // Y domain.
  const fin = (v: number | undefined) => (v !== undefined && Number.isFinite(v) && (!logY || v > 0) ? v : undefined);
  const yMinOpt = fin(opts.yMin);
  const yMaxOpt = fin(opts.yMax);
  // Reference lines count as data for the range, so "balanced 1/E" is never cut off.
  const refs: Series = { name: '', points: (opts.references ?? []).map((r) => [0, r.y] as const) };
  const dr = dataRange([...series, refs], logY);
  let ymin = yMinOpt ?? dr?.min ?? (logY ? 1 : 0);
  let ymax = yMaxOpt ?? dr?.max ?? (logY ? 10 : 1);
  if (ymax < ymin) [ymin, ymax] = [ymax, ymin];
  const yt = logY
    ? logTicks(ymin, ymax === ymin ? ymin * 10 : ymax, { lo: yMinOpt !== undefined, hi: yMaxOpt !== undefined })
    : niceTicks(ymin, ymax, Math.max(2, Math.round((dy1 - dy0) / 50)), { lo: yMinOpt !== undefined, hi: yMaxOpt !== undefined });
  const sy = logY ? logScale(yt.lo, yt.hi, dy1, dy0) : linearScale(yt.lo, yt.hi, dy1, dy0);

  // X domain.
  const xr = xRangeOf(series);
  const xMinOpt = opts.xMin !== undefined && Number.isFinite(opts.xMin) ? opts.xMin : undefined;
  const xMaxOpt = opts.xMax !== undefined && Number.isFinite(opts.xMax) ? opts.xMax : undefined;
  const xTarget = Math.max(2, Math.round((px1 - px0) / 90));
  let xt: Ticks;
  let xLabels: string[];
  let fmtX: (v: number) => string = formatTick;
  if (opts.xTime) {
    // Time: the domain is the data's, the ticks fall on calendar boundaries inside it.
    const lo = xMinOpt ?? xr?.min ?? 0;
    const hi = Math.max(xMaxOpt ?? xr?.max ?? lo + DAY, lo + SECOND);
    const tt = timeTicks(lo, hi, xTarget);
    xt = { lo, hi, ticks: tt.ticks };
    xLabels = tt.labels;
    fmtX = (v) => formatTime(v, Math.min(tt.stepMs, DAY));
  } else {
    xt = niceTicks(xMinOpt ?? xr?.min ?? 0, xMaxOpt ?? xr?.max ?? 1, xTarget, { lo: xMinOpt !== undefined, hi: xMaxOpt !== undefined });
    xLabels = xt.ticks.map(formatTick);
  }
  const sx = linearScale(xt.lo, xt.hi, px0, px1);

  // Unique per chart, so SVGs inlined into one HTML page do not share a clip path.
  const clipId = `plot-${hash(opts.title + series.map((s) => s.name).join('|'))}`;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${escapeXml(FONT)}" font-size="12">`,
    `<title>${escapeXml(opts.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600" fill="#222">${escapeXml(opts.title)}</text>`,
    `<defs><clipPath id="${clipId}"><rect x="${px0}" y="${f1(dy0 - 1)}" width="${px1 - px0}" height="${f1(dy1 - dy0 + 2)}"/></clipPath></defs>`,
  );

  // Grid and ticks.
  out.push('<g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const v of yt.ticks) out.push(`<line x1="${px0}" x2="${px1}" y1="${f1(sy(v))}" y2="${f1(sy(v))}"/>`);
  for (const v of xt.ticks) out.push(`<line x1="${f1(sx(v))}" x2="${f1(sx(v))}" y1="${py0}" y2="${py1}"/>`);
  out.push('</g>');
  out.push('<g class="y-ticks" fill="#444" text-anchor="end">');
  for (const v of yt.ticks) out.push(`<text class="tick" x="${px0 - 6}" y="${f1(sy(v) + 4)}">${escapeXml(formatTick(v))}</text>`);
  out.push('</g>');
  out.push('<g class="x-ticks" fill="#444" text-anchor="middle">');
  xt.ticks.forEach((v, i) => out.push(`<text class="tick" x="${f1(sx(v))}" y="${py1 + 16}">${escapeXml(xLabels[i]!)}</text>`));
  out.push('</g>');
  out.push(`<rect class="frame" x="${px0}" y="${py0}" width="${px1 - px0}" height="${py1 - py0}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${(px0 + px1) / 2}" y="${py1 + 34}" text-anchor="middle" fill="#222">${escapeXml(opts.xLabel)}</text>`);
  out.push(
    `<text x="16" y="${f1((dy0 + dy1) / 2)}" text-anchor="middle" fill="#222" transform="rotate(-90 16 ${f1((dy0 + dy1) / 2)})">${escapeXml(opts.yLabel + (logY ? ' (log)' : ''))}</text>`,
  );

  // Bands for values that have no place on the axis.
  if (anyBad)
    out.push(
      `<g class="nonfinite-band"><rect x="${px0}" y="${py0}" width="${px1 - px0}" height="${BAND}" fill="${BAD}" fill-opacity="0.12" stroke="${BAD}" stroke-opacity="0.5"/>`,
      `<text x="${px0 - 6}" y="${py0 + 13}" text-anchor="end" fill="${BAD}" font-weight="700">NaN/Inf</text></g>`,
    );
  if (anyNonPositive)
    out.push(
      `<g class="nonpositive-band"><rect x="${px0}" y="${py1 - BAND}" width="${px1 - px0}" height="${BAND}" fill="#888" fill-opacity="0.12" stroke="#888" stroke-opacity="0.5"/>`,
      `<text x="${px0 - 6}" y="${py1 - 5}" text-anchor="end" fill="#555" font-weight="700">≤ 0</text></g>`,
    );

  // Reference lines and annotations.
  for (const r of opts.references ?? []) {
    if (!Number.isFinite(r.y) || (logY && r.y <= 0) || r.y < yt.lo || r.y > yt.hi) continue;
    const y = sy(r.y);
    out.push(
      `<g class="reference"><line x1="${px0}" x2="${px1}" y1="${f1(y)}" y2="${f1(y)}" stroke="#555" stroke-dasharray="2 3"/>`,
      `<text x="${px1 - 4}" y="${f1(y - 4)}" text-anchor="end" fill="#555" font-size="11">${escapeXml(r.label)}</text></g>`,
    );
  }
  for (const a of opts.annotations ?? []) {
    if (!Number.isFinite(a.x) || a.x < xt.lo || a.x > xt.hi) continue;
    const x = sx(a.x);
    if (labelsAbove) {
      // Over the frame, centred on the line (kept inside the chart): never on top of the data.
      const w = approxTextWidth(a.label, 11);
      const cx = Math.min(Math.max(x, px0 + w / 2), px1 - w / 2);
      out.push(
        `<g class="annotation"><line x1="${f1(x)}" x2="${f1(x)}" y1="${py0 - 8}" y2="${py1}" stroke="#666" stroke-dasharray="5 4"/>`,
        `<text class="annotation-label" x="${f1(cx)}" y="${py0 - 11}" text-anchor="middle" fill="#444" font-size="11">${escapeXml(a.label)}</text></g>`,
      );
      continue;
    }
    out.push(
      `<g class="annotation"><line x1="${f1(x)}" x2="${f1(x)}" y1="${dy0}" y2="${py1}" stroke="#666" stroke-dasharray="5 4"/>`,
      `<text class="annotation-label" x="${f1(x + 4)}" y="${dy0 + 12}" fill="#444" font-size="11">${escapeXml(a.label)}</text></g>`,
    );
  }

  // Lines: a segment ends at any point that cannot be plotted, so no line runs through a NaN.
  out.push(`<g class="series" clip-path="url(#${clipId})" fill="none" stroke-width="1.8" stroke-linejoin="round">`);
  for (const s of series) {
    const segments: string[][] = [[]];
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && place(y, logY) === 'plot') segments[segments.length - 1]!.push(`${f1(sx(x))},${f1(sy(y))}`);
      else if (segments[segments.length - 1]!.length) segments.push([]);
    }
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const lines = segments.filter((g) => g.length > 1);
    if (lines.length)
      out.push(`<path class="line" data-series="${escapeXml(s.name)}" stroke="${s.color}"${dash} d="${lines.map((g) => `M${g.join('L')}`).join('')}"/>`);
    // A lone point between two gaps would be invisible as a path: draw it as a dot.
    for (const g of segments.filter((g) => g.length === 1)) {
      const [cx, cy] = g[0]!.split(',');
      out.push(`<circle class="point" data-series="${escapeXml(s.name)}" cx="${cx}" cy="${cy}" r="2.5" fill="${s.color}" stroke="none"/>`);
    }
  }
  out.push('</g>');

  // Markers for the points that went to a band, with a tooltip naming series, x and value.
  // Series bad at the same step sit side by side (not on top of each other), and a faint red
  // line marks each non-finite step across the plot.
  if (anyBad || anyNonPositive) {
    const groups = new Map<string, { s: (typeof series)[number]; x: number; y: number; p: Placement }[]>();
    for (const s of series)
      for (const [x, y] of s.points) {
        if (!Number.isFinite(x) || x < xt.lo || x > xt.hi) continue;
        const p = place(y, logY);
        if (p === 'plot') continue;
        const key = `${p}@${f1(sx(x))}`;
        const g = groups.get(key) ?? [];
        g.push({ s, x, y, p });
        groups.set(key, g);
      }
    out.push('<g class="markers">');
    const badX = new Set<string>();
    for (const g of groups.values()) if (g[0]!.p === 'nonfinite') badX.add(f1(sx(g[0]!.x)));
    for (const x of badX) out.push(`<line class="nonfinite-step" x1="${x}" x2="${x}" y1="${py0 + BAND}" y2="${py1}" stroke="${BAD}" stroke-opacity="0.3"/>`);
    for (const g of groups.values())
      g.forEach(({ s, x, y, p }, k) => {
        const cx = sx(x) + (k - (g.length - 1) / 2) * 10;
        const tip = `<title>${escapeXml(`${s.name} at ${fmtX(x)}: ${p === 'nonfinite' ? nonFiniteLabel(y) : formatTick(y)}`)}</title>`;
        if (p === 'nonfinite') {
          const kind = nonFiniteLabel(y);
          const fill = kind === 'NaN' ? 'none' : s.color;
          out.push(
            `<path class="nonfinite-marker" data-series="${escapeXml(s.name)}" data-x="${x}" data-value="${kind}" d="${markerPath(kind, cx, py0 + BAND / 2)}" stroke="${s.color}" stroke-width="2" fill="${fill}">${tip}</path>`,
          );
        } else {
          out.push(
            `<circle class="nonpositive-marker" data-series="${escapeXml(s.name)}" data-x="${x}" data-value="${y}" cx="${f1(cx)}" cy="${py1 - BAND / 2}" r="3.5" stroke="${s.color}" stroke-width="1.5" fill="#fff">${tip}</circle>`,
          );
        }
      });
    out.push('</g>');
  }

  if (!dr && !anyBad && !anyNonPositive) out.push(`<text x="${(px0 + px1) / 2}" y="${(py0 + py1) / 2}" text-anchor="middle" fill="#999">no data</text>`);

  // Legend, with a red note on every series that has non-finite values.
  out.push('<g class="legend">');
  legendRows.forEach((row, r) => {
    let x = px0;
    const y = py1 + 52 + r * 18;
    for (const it of row) {
      const dash = it.dashed ? ' stroke-dasharray="6 4"' : '';
      out.push(`<line x1="${x}" x2="${x + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="2.5"${dash}/>`);
      let label = `<tspan>${escapeXml(it.name)}</tspan>`;
      if (it.bad) label += `<tspan dx="6" fill="${BAD}" font-weight="700">${it.bad} non-finite</tspan>`;
      if (it.nonPositive) label += `<tspan dx="6" fill="#555">${it.nonPositive} ≤ 0</tspan>`;
      out.push(`<text class="legend-item" x="${x + 28}" y="${y}" fill="#222">${label}</text>`);
      x += it.width;
    }
  });
  out.push('</g>');
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
