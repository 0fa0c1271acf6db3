/**
 * The dashboard page: the event log so far (GET /api/snapshot), then every later event as it
 * happens (EventSource on /api/events), folded into the store and drawn at most a few times a
 * second. `window.__dashboard` lets the browser test read back what the charts hold.
 */
/// <reference lib="dom" />
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { parseEventLine, type UiEvent } from '../protocol.ts';
import { el } from './dom.ts';
import { Heatmap, colorBarCss, type HeatmapContents } from './heatmap.ts';
import { LineChart, ZoomSync, type ChartContents } from './line-chart.ts';
import { PANELS, panelSeries } from './panels.ts';
import { RunCard } from './run-card.ts';
import { SkippedTable } from './skipped-table.ts';
import { Store } from './store.ts';

const store = new Store();
const zoom = new ZoomSync();
const stats = { snapshotEvents: 0, liveEvents: 0, renders: 0, lastRenderStart: 0, lastRenderMs: 0, state: 'connecting' as 'connecting' | 'live' | 'ended' | 'lost' };
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
const skipped = new SkippedTable();
const cards: RunCard[] = [];
const heatmaps: Heatmap[] = [];
const charts = new Map<string, LineChart>();
const heatmapBox = el('div', { class: 'wide heatmaps' });

function layout(): void {
  app.append(runsBox, skipped.root);
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

function render(): void {
  stats.lastRenderStart = performance.now();
  const runs = store.runs.filter(Boolean);
  runs.forEach((d, i) => {
    if (!cards[i]) {
      cards[i] = new RunCard(i);
      runsBox.append(cards[i].root);
    }
    cards[i].update(d, Date.now());
  });
  skipped.update(runs);
  runs.forEach((d, i) => {
    if (!d.layers) return;
    if (!heatmaps[i]) {
      const box = el('section', { class: 'card wide', 'data-heatmap': String(i) });
      const bar = el('div', { class: 'colorbar' }, 'share 0', el('span', { class: 'bar', style: `background: ${colorBarCss()}` }), '1 (square-root scale)', el('span', { class: 'nan' }), 'NaN');
      heatmapBox.append(box);
      heatmaps[i] = new Heatmap(box, d.label, zoom);
      box.append(bar);
    }
    const t = store.trainOf(d.run);
    heatmaps[i].update(t.step, t.load, d.layers, d.experts);
  });
  for (const p of PANELS) charts.get(p.id)!.update(panelSeries(p, store), p.refs?.(runs) ?? []);
  afterDraw.port2.postMessage(null);
}

// Redraws are coalesced: a burst of events (or a fast run) costs one redraw per interval.
const MIN_INTERVAL_MS = 250;
let pending = false;
let lastRender = 0;
function schedule(): void {
  if (pending) return;
  pending = true;
  setTimeout(() => requestAnimationFrame(() => {
    pending = false;
    lastRender = performance.now();
    render();
  }), Math.max(0, MIN_INTERVAL_MS - (performance.now() - lastRender)));
}

function setState(s: typeof stats.state, text: string): void {
  stats.state = s;
  connection.className = `connection ${s}`;
  connection.textContent = text;
}

const liveRunning = () => store.runs.some((d) => d && d.live && d.status === 'running');

function subscribe(): void {
  if (!store.runs.some((d) => d?.live)) return setState('ended', 'saved runs');
  if (!liveRunning()) return setState('ended', 'run ended');
  const es = new EventSource(`/api/events?since=${store.seq}`);
  es.onopen = () => setState('live', 'live');
  es.onmessage = (m: MessageEvent<string>) => {
    const ev: UiEvent = parseEventLine(m.data);
    store.apply(ev);
    stats.liveEvents++;
    schedule();
    // The run is over: the server closes next; the page keeps everything it has.
    if (ev.type === 'status' && !liveRunning()) {
      es.close();
      // Draw the last records now, not after the coalescing delay: "ended" means the page shows
      // everything the run logged (the browser test reads the charts as soon as it sees it).
      render();
      setState('ended', `run ${ev.status === 'done' ? 'finished' : ev.status} — the page keeps its data`);
    }
  };
  es.onerror = () => {
    if (stats.state !== 'ended') setState('lost', 'connection lost — retrying');
  };
}

async function start(): Promise<void> {
  layout();
  const res = await fetch('/api/snapshot');
  if (!res.ok) throw new Error(`GET /api/snapshot: ${res.status}`);
  for (const line of (await res.text()).split('\n')) {
    if (!line) continue;
    store.apply(parseEventLine(line));
    stats.snapshotEvents++;
  }
  render();
  subscribe();
  let width = window.innerWidth;
  window.addEventListener('resize', () => {
    if (window.innerWidth === width) return;
    width = window.innerWidth;
    for (const [id, c] of charts) c.resize(app.querySelector<HTMLElement>(`[data-chart="${id}"]`)!.clientWidth - 24);
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
  setAfterRender: (f) => {
    afterRender = f;
  },
};

start().catch((e: unknown) => {
  setState('lost', `could not load the runs: ${e instanceof Error ? e.message : String(e)}`);
});
