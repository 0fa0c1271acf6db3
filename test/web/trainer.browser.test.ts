/**
 * The browser trainer end to end, as a user gets it: `npm run build:web`'s bundle served from
 * 127.0.0.1 (scripts/web/serve.ts), opened in headless Chromium with WebGPU on its software adapter
 * (SwiftShader), small-moe.json trained for a few steps by clicking the page's buttons. The same
 * config runs through `node train.js` on lavapipe in the same test, and the page must match it:
 *
 * - losses: every logged loss term of every step and both validations within LOSS_RTOL. Why not
 *   exact: the two adapters are different f32 implementations (Chromium's Dawn on SwiftShader,
 *   Node's Dawn on Mesa lavapipe; subgroup size 4 vs 8, 256 vs 1024 invocations per workgroup,
 *   10 vs 16 storage buffers per stage, so some kernels may split their work differently), and
 *   WGSL lets sqrt, division and exp differ by a few ulps. Measured on this machine: the losses
 *   were bit-identical (max relative difference 0).
 * - weights: the page's download (.safetensors) has the names, shapes and metadata of the Node
 *   run's checkpoint model.safetensors, and every value within WEIGHT_TOL of the tensor's largest
 *   |w| (measured: up to ~6e-6; most values equal or 1 ulp apart). Except the attention's key bias:
 *   softmax does not change when every score of a query moves by the same q·b, so its gradient is
 *   zero in exact arithmetic and rounding noise in practice, and AdamW turns noise into steps of up
 *   to ~lr (|m̂/√v̂| <= ~1 over these 3 steps). Two f32 implementations therefore move it
 *   differently by up to 2·Σ lr; that is the bound checked for it (measured: ~1.8e-7 of ~1.7e-3).
 *
 * Also: the memory plan shown before training is the planner's for this device's caps, the
 * precision note (f16 is not on SwiftShader: f32), the dashboard's store holds what the run logged,
 * and a CSV given to the page is planned from, or refused with the reason. Step times of both runs
 * are printed (never asserted).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb, type WebBuild } from '../../scripts/web/build.ts';
import { serveWeb, type WebServer } from '../../scripts/web/serve.ts';
import { loadDataset } from '../../src/train/data/datasets.ts';
import { readSafetensors } from '../../src/train/persist/safetensors.ts';
import { launchChromium } from '../ui/browser.ts';
import { REPO } from '../ui/helpers.ts';
import { readMetrics, runCli, scratch } from '../train/cli-helpers.ts';

const OVERRIDES = ['schedule.steps=3', 'schedule.warmupSteps=1'];
const LOSS_RTOL = 1e-5;
const WEIGHT_TOL = 1e-4;
const TRAIN_KEYS = ['loss', 'lossMain', 'aux', 'z', 'gradNorm'] as const;
const VALID_KEYS = ['loss', 'lossMain'] as const;

type Rec = Record<string, unknown> & { kind: string; step: number };

let build: WebBuild;
let server: WebServer;
let browser: Browser;
let page: Page;
let nodeDir: string;
let nodeRecords: Rec[];
const pageErrors: string[] = [];

/** The logger's spelling back to numbers ("NaN" -> NaN). */
const num = (v: unknown): number => (typeof v === 'string' ? Number(v) : (v as number));

const state = () => page.evaluate(() => ({ state: window.__webTrainer.state, message: window.__webTrainer.message }));
const waitState = (states: string[], timeout: number) =>
  page.waitForFunction((s) => s.includes(window.__webTrainer?.state), states, { timeout, polling: 200 }).then(state);

beforeAll(async () => {
  // The Node run first, alone on the CPU (its step times are printed below).
  nodeDir = scratch();
  const r = await runCli(nodeDir, [
    '--config',
    join(REPO, 'small-moe.json'),
    ...OVERRIDES.flatMap((o) => ['--set', o]),
    '--set',
    'logging.dir=run',
    '--set',
    'logging.progress=plain',
  ]);
  expect(r.status, r.stderr).toBe(0);
  nodeRecords = readMetrics(nodeDir, 'run') as Rec[];
  build = await buildWeb(mkdtempSync(join(tmpdir(), 'wmoe-web-')));
  server = await serveWeb(build.out, 0);
  browser = await launchChromium({ webgpu: true });
  page = await browser.newPage({ acceptDownloads: true });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the browser trainer', () => {
  it('is a static bundle with the shaders and the data set in it', () => {
    expect(Object.keys(build.files).sort()).toEqual(['app.css', 'app.js', 'index.html', 'sensor-temperature.json']);
    const js = readFileSync(join(build.out, 'app.js'), 'utf8');
    // The shaders are in the bundle (the page has no shaders/ folder to read): every one of them.
    expect(build.shaders).toBeGreaterThan(20);
    for (const entry of ['fn forward', '@compute']) expect(js).toContain(entry);
    // The data set is the engine's own parse of the npm package's file, value for value.
    const shipped = JSON.parse(readFileSync(join(build.out, 'sensor-temperature.json'), 'utf8')) as { id: string; values: number[] }[];
    const local = loadDataset('sensor-temperature');
    expect(shipped.map((s) => s.id)).toEqual(local.map((s) => s.id));
    shipped.forEach((s, i) => expect(Float64Array.from(s.values)).toEqual(local[i]!.values));
    console.log(
      `[web] bundle: ${Object.entries(build.files)
        .map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} KiB`)
        .join(', ')}`,
    );
  });

  it("opens navigator.gpu on SwiftShader and shows this device's memory plan before training, f32 (no shader-f16 here)", async () => {
    expect(await waitState(['ready', 'refused', 'error'], 180_000)).toEqual({ state: 'ready', message: expect.stringContaining('300 steps of small-moe') });
    const caps = await page.evaluate(() => window.__webTrainer.caps!);
    expect(caps.cpuAdapter).toBe(true);
    expect(caps.family).toBe('cpu');
    expect(caps.f16).toBe(false);
    expect(caps.adapter.architecture).toBe('swiftshader');
    expect(await page.textContent('[data-testid=precision]')).toContain('precision f32 (this device has no shader-f16: the page trains f32)');
    const plan = await page.textContent('[data-testid=plan-text]');
    expect(plan).toBe(await page.evaluate(() => window.__webTrainer.planText));
    // The planner's own report, for this adapter's caps: its limits (SwiftShader's 256 invocations per workgroup) and kernel family.
    expect(plan).toMatch(/^Memory plan for this \(this browser's adapter: google swiftshader; memory as given on the page; cpu kernels\): small-moe/);
    expect(plan).toContain('331,776 parameters');
    expect(plan).toContain('256 invocations per workgroup');
    expect(plan).toMatch(/Verdict: FITS/);
  });

  it('trains small-moe.json in the page: every loss equals the Node run on lavapipe within f32 precision', async () => {
    await page.fill('[data-testid=overrides]', OVERRIDES.join('\n'));
    await page.click('[data-testid=plan]');
    expect(await state()).toEqual({ state: 'ready', message: expect.stringContaining('3 steps of small-moe') });
    await page.click('[data-testid=train]');
    expect(await waitState(['done', 'failed', 'stopped'], 600_000)).toEqual({ state: 'done', message: '3 steps' });
    expect(pageErrors).toEqual([]);
    const web = (await page.evaluate(() => window.__webTrainer.records)) as Rec[];
    const pick = (rs: Rec[], kind: string) => rs.filter((r) => r.kind === kind);
    expect(pick(web, 'train').map((r) => r.step)).toEqual([1, 2, 3]);
    expect(pick(web, 'valid').map((r) => r.step)).toEqual([0, 3]);
    expect(pick(nodeRecords, 'train').map((r) => r.step)).toEqual([1, 2, 3]);
    expect(pick(nodeRecords, 'valid').map((r) => r.step)).toEqual([0, 3]);
    let worst = { rel: 0, what: 'none' };
    const compare = (kind: string, keys: readonly string[]) =>
      pick(web, kind).forEach((w, i) => {
        const n = pick(nodeRecords, kind)[i]!;
        for (const k of keys) {
          const [a, b] = [num(w[k]), num(n[k])];
          expect(Number.isFinite(a) && Number.isFinite(b), `${kind} step ${w.step} ${k}: page ${a}, node ${b}`).toBe(true);
          const rel = Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
          if (rel > worst.rel) worst = { rel, what: `${kind} step ${w.step} ${k}` };
          expect(rel, `${kind} step ${w.step} ${k}: page ${a}, node ${b}`).toBeLessThanOrEqual(LOSS_RTOL);
        }
      });
    compare('train', TRAIN_KEYS);
    compare('valid', VALID_KEYS);
    console.log(`[web] losses vs node: largest relative difference ${worst.rel} (${worst.what}); tolerance ${LOSS_RTOL}`);
    // The dashboard's store (what the charts draw) got the run's records.
    const drawn = await page.evaluate(() => window.__dashboard.store.runs[0]!.train.loss);
    expect(drawn).toEqual(pick(web, 'train').map((r) => r.loss));
    const ms = (rs: Rec[]) =>
      pick(rs, 'train')
        .map((r) => num(r.ms).toFixed(0))
        .join(', ');
    console.log(`[web] ms per step (the first compiles the kernels): chromium/swiftshader ${ms(web)}; node/lavapipe ${ms(nodeRecords)}`);
  });

  it("downloads the weights as the Node checkpoint's model.safetensors: same names, shapes and metadata, values within f32 tolerance", async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download]')]);
    expect(download.suggestedFilename()).toBe('small-moe-step-3.safetensors');
    const got = await readSafetensors((await download.path())!);
    const want = await readSafetensors(join(nodeDir, 'run', 'checkpoints', 'step-3', 'model.safetensors'));
    expect(got.metadata).toEqual(want.metadata);
    expect([...got.tensors.keys()]).toEqual([...want.tensors.keys()]);
    const lrSum = (await page.evaluate(() => window.__webTrainer.records)).filter((r) => r.kind === 'train').reduce((a, r) => a + (r.lr as number), 0);
    let worst = 0;
    let keyBias = 0;
    for (const [name, w] of want.tensors) {
      const g = got.tensors.get(name)!;
      expect(g.shape, name).toEqual(w.shape);
      const noise = name.endsWith('self_attn.k_proj.bias');
      const max = w.data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      for (let i = 0; i < w.data.length; i++) {
        const diff = Math.abs(g.data[i]! - w.data[i]!);
        if (noise) {
          if (!(diff <= 2 * lrSum)) expect.fail(`${name}[${i}]: page ${g.data[i]}, node ${w.data[i]}: more than 2·Σlr = ${2 * lrSum} apart`);
          keyBias = Math.max(keyBias, diff);
          continue;
        }
        if (!(diff / max <= WEIGHT_TOL)) expect.fail(`${name}[${i}]: page ${g.data[i]}, node ${w.data[i]} (largest |w| ${max})`);
        worst = Math.max(worst, diff / max);
      }
    }
    console.log(
      `[web] weights vs node checkpoint: largest difference ${worst.toExponential(2)} of a tensor's largest |w| (tolerance ${WEIGHT_TOL}); key biases ${keyBias.toExponential(2)} apart (bound ${(2 * lrSum).toExponential(2)})`,
    );
  });

  it('plans from a CSV given to the page, and refuses one too short to train on, saying why', async () => {
    const wave = ['time,level', ...Array.from({ length: 600 }, (_, i) => `${i},${Math.sin(i / 9).toFixed(4)}`)].join('\n');
    await page.setInputFiles('[data-testid=csv-file]', { name: 'wave.csv', mimeType: 'text/csv', buffer: Buffer.from(wave) });
    await page.waitForFunction(() => window.__webTrainer.log.some((l) => l.includes('csv wave.csv')), null, { timeout: 30_000 });
    expect(await state()).toEqual({ state: 'ready', message: expect.stringContaining('on csv wave.csv') });
    expect(await page.evaluate(() => window.__webTrainer.log.join('\n'))).toContain('level');
    const short = ['time,level', ...Array.from({ length: 20 }, (_, i) => `${i},${i}`)].join('\n');
    await page.setInputFiles('[data-testid=csv-file]', { name: 'short.csv', mimeType: 'text/csv', buffer: Buffer.from(short) });
    await page.waitForFunction(() => window.__webTrainer.state === 'refused', null, { timeout: 30_000 });
    expect((await state()).message).toMatch(/csv short\.csv: no usable series \(1 loaded: 1 shorter than/);
    expect(await page.isDisabled('[data-testid=train]')).toBe(true);
    // Back to the bundled data: ready again.
    await page.check('[data-testid=data-bundled]');
    expect((await state()).state).toBe('ready');
  });
});
