/**
 * The dashboard's chart library, measured (issue 13 item 3): `npm run bench:dashboard [-- --quick]`
 * writes bench/results/dashboard.{json,md}. Needs Chromium (scripts/setup.sh), no GPU.
 *
 * 1. Bundle size, minified and gzip -9: uPlot (what the page uses), the dashboard's whole page
 *    bundle, and two alternatives fetched with `npm pack` at pinned versions (Chart.js; Observable
 *    Plot with d3, which its UMD build needs).
 * 2. One chart of S series x N points (36 layers' max share over 10k steps), in headless Chromium:
 *    uPlot vs Chart.js, create and redraw with new data, each until its canvas is rasterised
 *    (getImageData forces Chromium's deferred canvas drawing).
 * 3. The real page (src/ui/page) on a live run of N steps x L layers x E experts: the snapshot
 *    size and first render, then the redraw after each pushed step (every line chart and the load
 *    heatmap), timed by the page's own render clock plus the canvas flush.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { pageAssets } from '../src/ui/bundle.ts';
import { Hub } from '../src/ui/hub.ts';
import { serve } from '../src/ui/server.ts';
import { findChromium, launchChromium } from '../test/ui/browser.ts';
import { environment, round, summarize, writeResults, type BenchRow, type SuiteResult } from './harness.ts';

const quick = process.argv.includes('--quick');
const STEPS = quick ? 2000 : 10_000;
const LAYERS = 36;
const EXPERTS = 8;
const REDRAWS = quick ? 3 : 9;
const UPLOT = join(import.meta.dirname, '..', 'node_modules', 'uplot', 'dist');

// Pinned so the sizes are reproducible; the files are the packages' own minified browser builds.
const ALTERNATIVES = [
  { name: 'Chart.js', packages: [{ spec: 'chart.js@4.6.1', file: 'dist/chart.umd.min.js' }] },
  {
    name: 'Observable Plot + d3',
    packages: [
      { spec: '@observablehq/plot@0.6.17', file: 'dist/plot.umd.min.js' },
      { spec: 'd3@7.9.2', file: 'dist/d3.min.js' },
    ],
  },
];

// tsx compiles this file with esbuild's keepNames, whose __name() helper the functions handed to
// page.evaluate then call inside the page: define it there.
const KEEP_NAMES = 'globalThis.__name ??= (f) => f';

const kib = (n: number) => round(n / 1024, 1);

function sizeRow(library: string, version: string, files: { name: string; text: Buffer }[]): BenchRow {
  const all = Buffer.concat(files.map((f) => f.text));
  return { library, version, files: files.map((f) => f.name).join(' + '), 'min KiB': kib(all.length), 'gzip KiB': kib(gzipSync(all, { level: 9 }).length) };
}

/** `npm pack <spec>` into a temp folder and read `file` from it; null (and why) when npm cannot. */
function packed(spec: string, file: string, dir: string): { text: Buffer; path: string } | { error: string } {
  const r = spawnSync('npm', ['pack', spec, '--silent', '--pack-destination', dir], { encoding: 'utf8' });
  const tgz = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !tgz) return { error: `npm pack ${spec} failed: ${r.stderr.trim().split('\n').at(-1) ?? r.status}` };
  const out = join(dir, tgz.replace(/\.tgz$/, ''));
  mkdirSync(out, { recursive: true });
  const t = spawnSync('tar', ['xzf', join(dir, tgz), '-C', out]);
  const path = join(out, 'package', file);
  if (t.status !== 0 || !existsSync(path)) return { error: `${spec}: no ${file} in the package` };
  return { text: readFileSync(path), path };
}

async function bundleSizes(dir: string): Promise<{ result: SuiteResult; scripts: Map<string, string> }> {
  const version = (JSON.parse(readFileSync(join(UPLOT, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const rows: BenchRow[] = [
    sizeRow('uPlot', version, [
      { name: 'uPlot.iife.min.js', text: readFileSync(join(UPLOT, 'uPlot.iife.min.js')) },
      { name: 'uPlot.min.css', text: readFileSync(join(UPLOT, 'uPlot.min.css')) },
    ]),
  ];
  const notes: string[] = [];
  const scripts = new Map<string, string>([['uPlot', join(UPLOT, 'uPlot.iife.min.js')]]);
  for (const alt of ALTERNATIVES) {
    const files: { name: string; text: Buffer; path: string }[] = [];
    for (const p of alt.packages) {
      const got = packed(p.spec, p.file, dir);
      if ('error' in got) notes.push(`${alt.name}: not measured (${got.error})`);
      else files.push({ name: p.file.split('/').at(-1)!, ...got });
    }
    if (files.length !== alt.packages.length) continue;
    rows.push(sizeRow(alt.name, alt.packages.map((p) => p.spec.slice(p.spec.lastIndexOf('@') + 1)).join(' + '), files));
    if (alt.name === 'Chart.js') scripts.set('Chart.js', files[0]!.path);
  }
  const page = await pageAssets();
  rows.push(
    sizeRow('the dashboard page (uPlot + src/ui/page, esbuild --minify)', '-', [
      { name: 'app.js', text: Buffer.from(page.js) },
      { name: 'app.css', text: Buffer.from(page.css) },
    ]),
  );
  notes.push(
    "min: the package's minified browser build as shipped; gzip: the same bytes through gzip -9 (what a browser downloads from a compressing server).",
  );
  return { result: { title: 'Bundle size', rows, columns: ['library', 'version', 'files', 'min KiB', 'gzip KiB'], notes }, scripts };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One chart of `series` x `points`, created then redrawn with new data; ms each, to the raster. */
async function libraryRedraw(browser: Browser, lib: 'uPlot' | 'Chart.js', script: string, series: number, points: number, width: number): Promise<BenchRow> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.setContent('<!doctype html><html><body style="margin:0"><div id="c" style="width:660px;height:220px"></div></body></html>');
  await page.evaluate(KEEP_NAMES);
  await page.addScriptTag({ path: script });
  if (lib === 'uPlot') await page.addStyleTag({ path: join(UPLOT, 'uPlot.min.css') });
  const times = await page.evaluate(
    async ({ lib, series, points, redraws, width }) => {
      const w = window as unknown as Record<string, unknown>;
      let seed = 1;
      const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
      const x = Array.from({ length: points }, (_, i) => i + 1);
      const make = () => Array.from({ length: series }, () => x.map(() => 0.3 + 0.2 * rand()));
      const flush = () => {
        document.querySelectorAll('canvas').forEach((c) => c.getContext('2d')!.getImageData(0, 0, 1, 1));
      };
      const tick = () =>
        new Promise<void>((r) => {
          const ch = new MessageChannel();
          ch.port1.onmessage = () => r();
          ch.port2.postMessage(null);
        });
      const root = document.getElementById('c')!;
      const out: { create: number; redraw: number[] } = { create: 0, redraw: [] };
      let redraw: (ys: number[][]) => void;
      let t0 = performance.now();
      if (lib === 'uPlot') {
        type U = { setData(d: unknown[]): void };
        const UPlot = w.uPlot as new (o: unknown, d: unknown[], el: HTMLElement) => U;
        const u = new UPlot(
          {
            width: 660,
            height: 220,
            scales: { x: { time: false } },
            series: [{}, ...Array.from({ length: series }, (_, i) => ({ stroke: `hsl(${(i * 37) % 360} 70% 45%)`, width }))],
          },
          [x, ...make()],
          root,
        );
        redraw = (ys) => u.setData([x, ...ys]);
      } else {
        type C = { data: { datasets: { data: { x: number; y: number }[] }[] }; update(mode: string): void };
        const Chart = w.Chart as new (el: HTMLCanvasElement, cfg: unknown) => C;
        const canvas = document.createElement('canvas');
        canvas.width = 660;
        canvas.height = 220;
        root.append(canvas);
        const toXY = (ys: number[]) => ys.map((y, i) => ({ x: x[i]!, y }));
        // Chart.js's own advice for big data: no animation, pre-parsed sorted data, no points.
        const c = new Chart(canvas, {
          type: 'line',
          data: { datasets: make().map((ys, i) => ({ data: toXY(ys), borderColor: `hsl(${(i * 37) % 360} 70% 45%)`, borderWidth: width, pointRadius: 0 })) },
          options: {
            animation: false,
            parsing: false,
            normalized: true,
            spanGaps: false,
            responsive: false,
            maintainAspectRatio: false,
            plugins: { legend: { display: false } },
            scales: { x: { type: 'linear' } },
          },
        });
        redraw = (ys) => {
          ys.forEach((y, i) => (c.data.datasets[i]!.data = toXY(y)));
          c.update('none');
        };
      }
      await tick();
      flush();
      out.create = performance.now() - t0;
      for (let k = 0; k < redraws; k++) {
        const ys = make();
        await tick();
        t0 = performance.now();
        redraw(ys);
        await tick();
        flush();
        out.redraw.push(performance.now() - t0);
      }
      return out;
    },
    { lib, series, points, redraws: REDRAWS, width },
  );
  await page.close();
  const t = summarize(times.redraw, 1);
  return {
    library: lib,
    chart: `${series} series x ${points} points`,
    'line width px': width,
    'create ms': round(times.create, 1),
    'redraw ms (median)': round(t.medianMs, 1),
    'redraw min-max': `${round(t.bestMs, 1)}-${round(t.maxMs, 1)}`,
  };
}

/** A train record as the logger writes it, for a model of LAYERS x EXPERTS. */
function trainRecord(step: number, r: () => number): Record<string, unknown> {
  const routing = Array.from({ length: LAYERS }, (_, layer) => {
    const w = Array.from({ length: EXPERTS }, () => 0.5 + r());
    const sum = w.reduce((a, b) => a + b, 0);
    const load = w.map((v) => v / sum);
    return { layer, load, entropy: -load.reduce((a, p) => a + p * Math.log(p), 0), maxShare: Math.max(...load), dropped: 0, switchLoss: 1 + 0.1 * r() };
  });
  const loss = 0.3 + 0.3 * Math.exp(-step / 2000) + 0.02 * r();
  return {
    kind: 'train',
    step,
    microSteps: 1,
    microStep: step,
    loss,
    lossMain: loss * 0.99,
    headLosses: [loss * 1.1, loss, loss * 0.95],
    aux: 2 + r(),
    z: 1.5 + r(),
    lr: 1e-3,
    auxFactor: 6e-4,
    gradNorm: 1 + r(),
    gradNormPostClip: 1,
    clipCoef: 1,
    clippedFraction: 0,
    skipped: false,
    lossScale: 1,
    overflow: false,
    scaleEvent: 'none',
    nonFinite: [],
    routing,
    tokens: 4096,
    ms: 150 + 10 * r(),
    submits: 1,
    liveBytes: 4e9,
    peakBytes: 6e9,
  };
}

function validRecord(step: number, r: () => number): Record<string, unknown> {
  const loss = 0.35 + 0.3 * Math.exp(-step / 2000) + 0.01 * r();
  return { kind: 'valid', step, loss, lossMain: loss, horizons: [1, 8, 32].map((horizon) => ({ horizon, mse: loss * 2, mae: loss * 1.5 })), windows: 64 };
}

async function pageRedraw(browser: Browser): Promise<SuiteResult> {
  const r = rng(13);
  const hub = new Hub();
  const run = hub.addRun('bench', 'runs/bench', true);
  hub.status(run, 'running');
  const t0 = performance.now();
  for (let s = 1; s <= STEPS; s++) {
    const problem = hub.record(run, trainRecord(s, r)) ?? (s % 100 === 0 ? hub.record(run, validRecord(s, r)) : null);
    if (problem) throw new Error(problem);
  }
  const hubMs = performance.now() - t0;
  const snapshotBytes = hub.since(0).reduce((a, l) => a + Buffer.byteLength(l) + 1, 0);
  const server = await serve({ address: { host: '127.0.0.1', port: 0 }, hub, flags: { port: '--ui', host: '--ui-host' } });
  const page: Page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    const tLoad = performance.now();
    await page.goto(server.url);
    await page.evaluate(KEEP_NAMES);
    await page.waitForFunction(() => window.__dashboard.stats.renders >= 1, null, { timeout: 300_000, polling: 100 });
    const loadMs = performance.now() - tLoad;
    const first = await page.evaluate(() => window.__dashboard.stats.lastRenderMs);
    await page.evaluate(() => {
      const w = window as unknown as { __redraws: number[] };
      w.__redraws = [];
      window.__dashboard.setAfterRender(() => {
        document.querySelectorAll('canvas').forEach((c) => c.getContext('2d')!.getImageData(0, 0, 1, 1));
        w.__redraws.push(performance.now() - window.__dashboard.stats.lastRenderStart);
      });
    });
    for (let k = 1; k <= REDRAWS; k++) {
      hub.record(run, trainRecord(STEPS + k, r));
      await page.waitForFunction((n) => (window as unknown as { __redraws: number[] }).__redraws.length >= n, k, { timeout: 60_000, polling: 50 });
    }
    const redraws = await page.evaluate(() => (window as unknown as { __redraws: number[] }).__redraws);
    const check = await page.evaluate(() => ({ heat: window.__dashboard.heatmaps()[0]!, steps: window.__dashboard.store.runs[0]!.train.step.length }));
    if (check.steps !== STEPS + REDRAWS || check.heat.layers !== LAYERS || check.heat.experts !== EXPERTS)
      throw new Error(`the page holds ${check.steps} steps, ${check.heat.layers} x ${check.heat.experts}: not what was sent`);
    const t = summarize(redraws, 1);
    const charts = await page.evaluate(() => window.__dashboard.charts().length);
    return {
      title: `The dashboard page: ${STEPS} steps x ${LAYERS} layers x ${EXPERTS} experts, live`,
      rows: [
        {
          steps: STEPS,
          layers: LAYERS,
          experts: EXPERTS,
          'line charts': charts,
          'snapshot MiB': round(snapshotBytes / 2 ** 20, 1),
          'hub fill s': round(hubMs / 1000, 1),
          'page load s': round(loadMs / 1000, 1),
          'first render ms': round(first, 0),
          'redraw ms (median)': round(t.medianMs, 0),
          'redraw min-max': `${round(t.bestMs, 0)}-${round(t.maxMs, 0)}`,
        },
      ],
      notes: [
        `hub fill: ${STEPS} records checked and serialised by the server (src/ui/hub.ts), as a run logs them. page load: navigation to the first render drawn (fetching and parsing the snapshot included).`,
        `redraw: one pushed step, then every chart and the heatmap redrawn (src/ui/page/main.ts render, uPlot's deferred draw and the canvas raster included); ${REDRAWS} redraws. The page redraws at most every 250 ms.`,
      ],
    };
  } finally {
    await page.close();
    await server.close();
  }
}

async function main(): Promise<number> {
  if (!findChromium()) await launchChromium(); // throws the message naming scripts/setup.sh
  const dir = mkdtempSync(join(tmpdir(), 'wmoe-bench-dashboard-'));
  const sizes = await bundleSizes(dir);
  console.error(`[bench] bundle sizes done (${dir})`);
  const browser = await launchChromium();
  try {
    const rows: BenchRow[] = [];
    // Both widths: in Chromium's software raster a fractional stroke width costs several times more.
    for (const width of [1, 1.5])
      for (const [lib, script] of sizes.scripts) {
        rows.push(await libraryRedraw(browser, lib as 'uPlot' | 'Chart.js', script, LAYERS, STEPS, width));
        console.error(`[bench] ${lib}: ${JSON.stringify(rows.at(-1))}`);
      }
    const lib: SuiteResult = {
      title: `One line chart, ${LAYERS} series x ${STEPS} points (a per-layer panel), 660 x 220 px`,
      rows,
      notes: [
        `create: construction to the first raster; redraw: new data for every series to the raster (${REDRAWS} redraws). Chart.js with animation off, parsing off, normalized, no points (its documented settings for big data).`,
      ],
    };
    const page = await pageRedraw(browser);
    console.error(`[bench] page: ${JSON.stringify(page.rows[0])}`);
    const version = (await browser.version()).trim();
    const env = { ...environment(), adapter: `headless Chromium ${version} (--disable-gpu: software canvas)` };
    const files = writeResults(quick ? 'dashboard-quick' : 'dashboard', [sizes.result, lib, page], env);
    console.error(`[bench] wrote ${files.md}`);
    return 0;
  } finally {
    await browser.close();
  }
}

process.exitCode = await main();
