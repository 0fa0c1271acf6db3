/**
 * The browser trainer's page (`npm run web`): small-moe.json trained on navigator.gpu, on the
 * bundled data set or a dropped CSV, with the memory plan for this device shown before training
 * and the dashboard's charts and findings drawn from the run's records as they come. The records
 * go through the dashboard's own hub and store (src/ui/hub.ts, src/ui/page/view.ts), as a run of
 * `train.js --ui` does. `window.__webTrainer` lets the browser test drive and read the page.
 */
/// <reference lib="dom" />
import './style.css';
import { Hub } from '../ui/hub.ts';
import { parseHeader } from '../ui/header.ts';
import { parseEventLine } from '../ui/protocol.ts';
import { render, schedule, setState, startView, store } from '../ui/page/view.ts';
import type { DawnRuntime } from '../kernels/runtime.ts';
import { describeFamily } from '../kernels/caps.ts';
import type { TrainConfig } from '../train/config.ts';
import { describeSource, formatReport, prepareData, type LoadedData } from '../train/data/prepare.ts';
import type { Series } from '../train/data/series.ts';
import { CONFIG_NAME, pageConfig } from './config.ts';
import { BUNDLED_DATASET, csvSeries, fetchBundled } from './data.ts';
import { openPageRuntime } from './device.ts';
import { PageRun, planInPage, refusal, type RunEnd } from './run.ts';

type PageState = 'loading' | 'ready' | 'refused' | 'training' | 'done' | 'stopped' | 'failed' | 'error';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  adapter: $<HTMLSpanElement>('adapter'),
  precision: $<HTMLSpanElement>('precision'),
  dataBundled: $<HTMLInputElement>('data-bundled'),
  dataCsv: $<HTMLInputElement>('data-csv'),
  csvFile: $<HTMLInputElement>('csv-file'),
  csvName: $<HTMLSpanElement>('csv-name'),
  csvColumn: $<HTMLInputElement>('csv-column'),
  overrides: $<HTMLTextAreaElement>('overrides'),
  memory: $<HTMLInputElement>('memory'),
  plan: $<HTMLButtonElement>('plan'),
  planText: $<HTMLPreElement>('plan-text'),
  train: $<HTMLButtonElement>('train'),
  stop: $<HTMLButtonElement>('stop'),
  download: $<HTMLButtonElement>('download'),
  log: $<HTMLPreElement>('log'),
  state: $<HTMLSpanElement>('state'),
};

/** What the test reads: the page's state, the plan, every record as the sink got it, and the log. */
const page = {
  state: 'loading' as PageState,
  message: '',
  planText: '',
  caps: null as DawnRuntime['caps'] | null,
  records: [] as Record<string, unknown>[],
  log: [] as string[],
};

let rt: DawnRuntime | null = null;
let bundled: Series[] | null = null;
let dropped: { name: string; text: string } | null = null;
/** The config, series and plan the Train button trains (set by prepare()). */
let prepared: { cfg: TrainConfig; series: Series[]; notes: string[]; planText: string } | null = null;
let current: PageRun | null = null;
let lastReport = '';
const hub = new Hub();
hub.subscribe((_seq, line) => {
  store.apply(parseEventLine(line));
  schedule();
});

function log(line: string): void {
  page.log.push(line);
  ui.log.textContent = page.log.slice(-200).join('\n');
  ui.log.scrollTop = ui.log.scrollHeight;
}

function setPage(state: PageState, message = ''): void {
  page.state = state;
  page.message = message;
  ui.state.textContent = message ? `${state}: ${message}` : state;
  ui.state.className = `state ${state}`;
  ui.train.disabled = state !== 'ready' && state !== 'done' && state !== 'stopped' && state !== 'failed';
  ui.plan.disabled = state === 'training' || state === 'loading';
  ui.stop.disabled = state !== 'training';
  ui.download.disabled = !current || state === 'training';
}

const overrideLines = () =>
  ui.overrides.value
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

const windows = (cfg: TrainConfig, series: Series[], notes: string[]): LoadedData =>
  prepareData(series, cfg.data, { seed: cfg.seed, source: describeSource(cfg.data.source), notes: [...notes] });

/** Config, data and plan from the controls; the plan is shown whatever it says. */
function prepare(): void {
  if (!rt) return;
  prepared = null;
  try {
    const csv = ui.dataCsv.checked && dropped;
    const column = ui.csvColumn.value.trim();
    const source = csv ? { kind: 'csv' as const, path: dropped!.name, ...(column ? { column } : {}) } : undefined;
    const cfg = pageConfig(overrideLines(), source);
    let series: Series[];
    const notes: string[] = [];
    if (csv) {
      const r = csvSeries(dropped!.text, dropped!.name, column || undefined);
      series = r.series;
      notes.push(r.note);
    } else series = bundled!;
    const data = windows(cfg, series, notes);
    const report = formatReport(data.report);
    if (report !== lastReport) log(report);
    lastReport = report;
    if (data.train.length === 0) throw new Error('no training windows: the series are shorter than data.contextLength + 1 (lower data.contextLength)');
    const gib = Number(ui.memory.value);
    if (!(gib > 0)) throw new Error(`plan for ${ui.memory.value} GiB: expected a positive number of GiB (the device's memory)`);
    const { plan, text } = planInPage(cfg, rt.caps, gib * 2 ** 30);
    page.planText = text;
    ui.planText.textContent = text;
    ui.precision.textContent =
      `precision ${cfg.precision.activations}` +
      (rt.caps.f16 ? ' (this device has shader-f16: --set precision.activations=f16 trains f16)' : ' (this device has no shader-f16: the page trains f32)');
    const no = refusal(cfg, rt.caps, plan);
    if (no) return setPage('refused', no);
    prepared = { cfg, series, notes, planText: text };
    setPage('ready', `${cfg.schedule.steps} steps of ${cfg.model.preset} on ${data.report.source}, ${data.report.trainWindows} training windows`);
  } catch (e) {
    setPage('refused', e instanceof Error ? e.message : String(e));
  }
}

let runs = 0;

async function train(): Promise<void> {
  if (!rt || !prepared) return;
  const { cfg, planText } = prepared;
  // Fresh windows for every run: the batch sampler is seeded (cfg.seed), so a second Train
  // repeats the first as train.js would, rather than continuing its sample stream.
  const data = windows(cfg, prepared.series, prepared.notes);
  current?.dispose();
  current = null;
  setPage('training', `${cfg.schedule.steps} steps`);
  setState('live', 'training in this page');
  const run = hub.addRun(`run ${++runs} (${data.report.source}${overrideLines().length ? `; ${overrideLines().join(' ')}` : ''})`, '(this page)', true);
  let end: RunEnd;
  try {
    current = new PageRun(rt, cfg, data, planText);
    end = await current.train({
      header: (h) => {
        const r = parseHeader(JSON.parse(JSON.stringify(h)));
        if ('error' in r) throw new Error(`run header: ${r.error}`);
        hub.header(run, r.header);
      },
      record: (r) => {
        page.records.push(r as unknown as Record<string, unknown>);
        const problem = hub.record(run, r);
        if (problem) throw new Error(`step ${r.step}: ${problem}`);
        if (r.step === 1 || r.step % 10 === 0 || r.step === cfg.schedule.steps) log(`step ${r.step}: loss ${r.loss.toPrecision(5)}, ${r.ms.toFixed(0)} ms`);
      },
      valid: (r) => {
        page.records.push(r as unknown as Record<string, unknown>);
        const problem = hub.record(run, r);
        if (problem) throw new Error(`validation at step ${r.step}: ${problem}`);
        log(`[valid] step ${r.step}: loss ${r.loss.toPrecision(5)} over ${r.windows} windows`);
      },
      log,
    });
  } catch (e) {
    end = { outcome: 'failed', steps: current?.step ?? 0, message: e instanceof Error ? e.message : String(e) };
  }
  const status = end.outcome === 'failed' ? 'failed' : end.outcome;
  hub.status(run, status, end.outcome === 'failed' ? end.message : undefined);
  render();
  setState('ended', `run ${end.outcome === 'done' ? 'finished' : end.outcome} after ${end.steps} steps`);
  if (end.outcome === 'failed') {
    log(`failed: ${end.message}`);
    setPage('failed', end.message);
  } else setPage(end.outcome, `${end.steps} steps`);
}

async function download(): Promise<void> {
  if (!current) return;
  const parts = await current.weights();
  const url = URL.createObjectURL(new Blob(parts as BlobPart[], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: `${CONFIG_NAME.replace(/\.json$/, '')}-step-${current.step}.safetensors` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function useFile(f: File): Promise<void> {
  dropped = { name: f.name, text: await f.text() };
  ui.csvName.textContent = `${f.name} (${(f.size / 1024).toFixed(1)} KiB)`;
  ui.dataCsv.disabled = false;
  ui.dataCsv.checked = true;
  prepare();
}

function wire(): void {
  ui.plan.addEventListener('click', prepare);
  ui.memory.addEventListener('change', prepare);
  ui.dataBundled.addEventListener('change', prepare);
  ui.dataCsv.addEventListener('change', prepare);
  ui.train.addEventListener('click', () => void train());
  ui.stop.addEventListener('click', () => current?.stop());
  ui.download.addEventListener('click', () => void download());
  ui.csvFile.addEventListener('change', () => {
    const f = ui.csvFile.files?.[0];
    if (f) void useFile(f);
  });
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    const f = e.dataTransfer?.files[0];
    if (f) void useFile(f);
  });
}

async function start(): Promise<void> {
  startView();
  wire();
  setPage('loading', 'opening the WebGPU device');
  ui.dataBundled.nextSibling!.textContent = ` ${BUNDLED_DATASET} (bundled)`;
  // Chrome's rounded RAM figure (at most 8): a start for a CPU adapter; a GPU's own memory is the user's to give.
  const ram = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  ui.memory.value = String(ram ?? 4);
  try {
    rt = await openPageRuntime();
    page.caps = rt.caps;
    const a = rt.caps.adapter;
    ui.adapter.textContent = `${[a.vendor, a.architecture, a.device || a.description].filter(Boolean).join(' ')}${rt.caps.cpuAdapter ? ' (a CPU adapter)' : ''}; ${describeFamily(rt.caps)}`;
    bundled = await fetchBundled();
  } catch (e) {
    setState('lost', 'no device');
    return setPage('error', e instanceof Error ? e.message : String(e));
  }
  setState('ended', 'not training');
  prepare();
}

declare global {
  interface Window {
    __webTrainer: typeof page & { prepare(): void };
  }
}
window.__webTrainer = Object.assign(page, { prepare });

void start();
