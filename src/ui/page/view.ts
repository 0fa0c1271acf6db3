/**
 * The dashboard's view: the store, the run cards, the findings, the charts and the heatmaps, drawn
 * from the events the store is given, at most a few times a second. Two pages feed it: the
 * dashboard (main.ts: the server's event log, live) and the browser trainer (src/web/main.ts: the
 * records of a run training in the page). `window.__dashboard` lets the browser tests read back what
 * the charts hold. The page's HTML has #app and #connection.
 */
/// <reference lib="dom" />
import 'uplot/dist/uPlot.min.css';
import './style.css';
import type { Finding } from '../../diagnose/types.ts';
import { el } from './dom.ts';
import { FindingsPanel } from './findings-panel.ts';
import { Heatmap, colorBarCss, type HeatmapContents, type HeatmapEvent } from './heatmap.ts';
import { LineChart, ZoomSync, type ChartContents } from './line-chart.ts';
import { PANELS, hiddenReason, panelEvents, panelSeries, runColor } from './panels.ts';
import { RunCard } from './run-card.ts';
import { SkippedTable } from './skipped-table.ts';
import { MAX_SMOOTHING } from './smooth.ts';
import { Store } from './store.ts';
import { timing, type Timing } from './timing.ts';

export const store = new Store();
const zoom = new ZoomSync();
type State = 'connecting' | 'live' | 'following' | 'ended' | 'lost';
export const stats = { snapshotEvents: 0, liveEvents: 0, renders: 0, lastRenderStart: 0, lastRenderMs: 0, state: 'connecting' as State };
/** TensorBoard's smoothing weight, 0 (raw) .. 0.99, for every chart. */
let smoothing = 0;
// uPlot draws in a microtask after setData: a message posted after render() arrives once it has.
const afterDraw = new MessageChannel();
let afterRender: (() => void) | null = null;
afterDraw.port1.onmessage = () => {
  stats.lastRenderMs = performance.now() - stats.lastRenderStart;
  stats.renders++;
  afterRender?.();
};

const app = document.getElementById('app')!;
const connection = document.getElementById('connection')!;
const runsBox = el('div', { class: 'runs' });
const findings = new FindingsPanel();
const skipped = new SkippedTable();
const hiddenNote = el('div', { class: 'wide hidden-note', 'data-testid': 'hidden-panels' });
const cards: RunCard[] = [];
const heatmaps: Heatmap[] = [];
const charts = new Map<string, LineChart>();
const heatmapBox = el('div', { class: 'wide heatmaps' });

function layout(): void {
  app.append(runsBox, findings.root, skipped.root, hiddenNote);
  const [first, second, ...rest] = PANELS;
  const card = (id: string) => {
    const c = el('section', { class: 'card', 'data-chart': id });
    app.append(c);
    return c;
  };
  for (const p of [first!, second!]) charts.set(p.id, new LineChart(card(p.id), p, zoom));
  app.append(heatmapBox);
  for (const p of rest) charts.set(p.id, new LineChart(card(p.id), p, zoom));
}

const SEVERITY_COLOR = { error: '#b0186f', warning: '#c77800' } as const;

function heatmapEvents(fs: readonly Finding[]): HeatmapEvent[] {
  return fs.filter((f) => f.layer !== null).map((f) => ({ x: f.firstStep, layer: f.layer!, label: f.kind, color: SEVERITY_COLOR[f.severity] }));
}

export function render(): void {
  stats.lastRenderStart = performance.now();
  const runs = store.runs.filter(Boolean);
  runs.forEach((d, i) => {
    if (!cards[i]) {
      cards[i] = new RunCard(i);
      runsBox.append(cards[i].root);
    }
    cards[i].update(d, Date.now(), runs.length > 1 ? runColor(i) : null);
  });
  findings.update(runs);
  skipped.update(runs);
  runs.forEach((d, i) => {
    if (!d.layers) return;
    if (!heatmaps[i]) {
      const box = el('section', { class: 'card wide', 'data-heatmap': String(i) });
      const bar = el(
        'div',
        { class: 'colorbar' },
        'share 0',
        el('span', { class: 'bar', style: `background: ${colorBarCss()}` }),
        '1 (square-root scale)',
        el('span', { class: 'nan' }),
        'NaN',
      );
      heatmapBox.append(box);
      heatmaps[i] = new Heatmap(box, d.label, zoom);
      box.append(bar);
    }
    const t = store.trainOf(d.run);
    heatmaps[i].update(t.step, t.load, d.layers, d.experts, heatmapEvents(d.diagnosis.findings()));
  });
  const hidden: string[] = [];
  for (const p of PANELS) {
    const chart = charts.get(p.id)!;
    const series = panelSeries(p, store);
    const reason = hiddenReason(p, store, series);
    chart.setHidden(reason);
    if (reason) hidden.push(`${p.title} (${reason})`);
    chart.update(series, p.refs?.(runs) ?? [], panelEvents(p, store), smoothing);
  }
  if (runs.some((d) => d.diagnosis.pending > 0)) scheduleDrain();
  hiddenNote.textContent = hidden.length
    ? `Not shown, as they carry no information for ${runs.length > 1 ? 'these runs' : 'this run'}: ${hidden.join('; ')}.`
    : '';
  hiddenNote.hidden = !hidden.length;
  afterDraw.port2.postMessage(null);
}

// The diagnosis judges queued records in slices, between redraws: a late page's long history
// does not hold up the charts; the findings appear when it is done (or every half second).
let draining = false;
function scheduleDrain(): void {
  if (draining) return;
  draining = true;
  const started = performance.now();
  const slice = () => {
    let left = 0;
    for (const d of store.runs) if (d) left += d.diagnosis.drain(12);
    if (left === 0 || performance.now() - started > 500) schedule();
    if (left > 0) setTimeout(slice, 0);
    else draining = false;
  };
  setTimeout(slice, 0);
}

// Redraws are coalesced: a burst of events (or a fast run) costs one redraw per interval.
const MIN_INTERVAL_MS = 250;
let pending = false;
let lastRender = 0;
export function schedule(): void {
  if (pending) return;
  pending = true;
  setTimeout(
    () =>
      requestAnimationFrame(() => {
        pending = false;
        lastRender = performance.now();
        render();
      }),
    Math.max(0, MIN_INTERVAL_MS - (performance.now() - lastRender)),
  );
}

export function setState(s: typeof stats.state, text: string): void {
  stats.state = s;
  connection.className = `connection ${s}`;
  connection.textContent = text;
}

/** The header's smoothing slider and number: one weight for every chart, as TensorBoard's. */
function smoothingControl(): void {
  const range = document.getElementById('smoothing') as HTMLInputElement | null;
  const number = document.getElementById('smoothing-value') as HTMLInputElement | null;
  if (!range || !number) return;
  const set = (v: number, from: HTMLInputElement | null) => {
    setSmoothing(v);
    if (from !== range) range.value = String(smoothing);
    if (from !== number) number.value = String(smoothing);
  };
  range.addEventListener('input', () => set(Number(range.value), range));
  number.addEventListener('change', () => set(Number(number.value), number));
}

function setSmoothing(v: number): void {
  const w = Number.isFinite(v) ? Math.min(MAX_SMOOTHING, Math.max(0, Math.round(v * 100) / 100)) : 0;
  if (w === smoothing) return;
  smoothing = w;
  const range = document.getElementById('smoothing') as HTMLInputElement | null;
  const number = document.getElementById('smoothing-value') as HTMLInputElement | null;
  if (range && range.value !== String(w)) range.value = String(w);
  if (number && Number(number.value) !== w) number.value = String(w);
  render();
}

/** Lay the page out, wire the smoothing control and the resize handler, and draw what the store holds. */
export function startView(): void {
  layout();
  smoothingControl();
  render();
  let width = window.innerWidth;
  window.addEventListener('resize', () => {
    if (window.innerWidth === width) return;
    width = window.innerWidth;
    for (const [id, c] of charts) if (!c.hidden) c.resize(app.querySelector<HTMLElement>(`[data-chart="${id}"]`)!.clientWidth - 24);
    heatmaps.forEach((h, i) => h.resize(app.querySelector<HTMLElement>(`[data-heatmap="${i}"]`)!.clientWidth - 24));
  });
}

declare global {
  interface Window {
    __dashboard: {
      stats: typeof stats;
      store: Store;
      charts(): ChartContents[];
      heatmaps(): HeatmapContents[];
      /** Each run's findings, as the page's own Diagnoser has them. */
      findings(): { run: number; label: string; findings: Finding[] }[];
      timing(): Timing[];
      /** The smoothing weight for every chart (0 .. 0.99), as the header's slider sets it; redraws. */
      setSmoothing(w: number): void;
      /** A chart's log-scale toggle. */
      setLog(id: string, log: boolean): void;
      /** Zoom every chart to steps [min, max] (null: all), as a drag does; redraws. */
      zoom(range: { min: number; max: number } | null): void;
      /** Put the cursor on step x of a chart and read its legend. */
      hover(id: string, x: number): { label: string; value: string }[];
      /** Called once a render has drawn (bench/dashboard.ts times redraws with it); null for none. */
      setAfterRender(f: (() => void) | null): void;
    };
  }
}

window.__dashboard = {
  stats,
  store,
  charts: () => [...charts.values()].map((c) => c.contents()),
  heatmaps: () => heatmaps.map((h) => h.contents()),
  findings: () =>
    store.runs.filter(Boolean).map((d) => {
      d.diagnosis.drain();
      return { run: d.run, label: d.label, findings: d.diagnosis.findings() };
    }),
  timing: () => store.runs.filter(Boolean).map((d) => timing(d)),
  setSmoothing,
  setLog: (id, log) => charts.get(id)?.setLog(log),
  zoom: (range) => zoom.set(range),
  hover: (id, x) => charts.get(id)?.hover(x) ?? [],
  setAfterRender: (f) => {
    afterRender = f;
  },
};
