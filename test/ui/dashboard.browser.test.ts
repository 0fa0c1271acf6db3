/**
 * The dashboard in a real Chromium against a real short run, started as a user types it:
 * `node train.js --config small-moe.json --set ... --ui 0`. Checks, from the page's own chart data
 * (window.__dashboard), that the charts hold what metrics.jsonl logged — loss, validation loss,
 * per-layer load and max share — that the injected NaN step is drawn as NaN and listed with its
 * tensor name, that a page opened late holds the whole history, and that dashboard.js shows the
 * saved run (twice, overlaid) the same way, each run in one colour named in the legend. And what a
 * TensorBoard user expects: seconds per step and ETA while it runs, smoothing that changes the
 * drawn line but not the logged values, a log-scale toggle, a legend that shows the value at or
 * before the cursor, byte axes, the f32 run's flat loss-scale panel hidden with its reason, and a
 * zoomed heatmap without grey columns for logged steps. Saves a screenshot.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChartContents } from '../../src/ui/page/line-chart.ts';
import type { HeatmapContents } from '../../src/ui/page/heatmap.ts';
import { launchChromium } from './browser.ts';
import { DASHBOARD_JS, REPO, startCli } from './helpers.ts';

const STEPS = 20;
const NAN_STEP = 5;
const WAIT_STEP = 8;

interface Train {
  step: number;
  loss: number | string;
  /** null on a step whose forward was not finite (the skipped NaN step). */
  routing: { layer: number; load: (number | string)[] | null; maxShare: number | string | null }[];
  skipped: boolean;
  nonFinite: { name: string }[];
}
interface Valid {
  step: number;
  loss: number | string;
}

/** The logger's spelling back to numbers: "NaN" -> NaN. */
const num = (v: number | string): number => (typeof v === 'number' ? v : Number(v));
/** A routing statistic: null (not available) is drawn as NaN, never as a value or "no record". */
const stat = (v: number | string | null): number => (v === null ? NaN : num(v));

function readLog(dir: string): { train: Train[]; valid: Valid[] } {
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { kind: string });
  return { train: lines.filter((r) => r.kind === 'train') as unknown as Train[], valid: lines.filter((r) => r.kind === 'valid') as unknown as Valid[] };
}

async function contents(page: Page): Promise<{ charts: ChartContents[]; heatmaps: HeatmapContents[] }> {
  return page.evaluate(() => ({ charts: window.__dashboard.charts(), heatmaps: window.__dashboard.heatmaps() }));
}

/** The value a chart series holds at step x: its raw value (the legend's), and what is drawn. */
function at(chart: ChartContents, label: string, x: number): { raw: unknown; plotted: unknown } {
  const s = chart.series.find((c) => c.label === label);
  if (!s) throw new Error(`${chart.id}: no series "${label}" (has ${chart.series.map((c) => c.label).join(', ')})`);
  const i = chart.x.indexOf(x);
  if (i < 0) throw new Error(`${chart.id}: no step ${x}`);
  return { raw: s.raw[i], plotted: s.plotted[i] };
}

/** Every logged value is in the charts, NaN as NaN (a gap in the line plus a NaN marker). */
function expectChartsHold(c: { charts: ChartContents[]; heatmaps: HeatmapContents[] }, log: { train: Train[]; valid: Valid[] }, suffix = ''): void {
  const chart = (id: string) => c.charts.find((x) => x.id === id)!;
  const loss = chart('loss');
  for (const r of log.train) {
    const v = at(loss, `train${suffix}`, r.step);
    if (Number.isNaN(num(r.loss))) {
      expect(v.raw, `step ${r.step}`).toBeNaN();
      expect(v.plotted, `step ${r.step}: NaN is a gap, never 0`).toBeNull();
      expect(loss.markers).toContainEqual({ series: `train${suffix}`, x: r.step, kind: 'NaN' });
    } else {
      expect(v.raw).toBe(num(r.loss));
      expect(v.plotted).toBe(num(r.loss));
    }
  }
  for (const r of log.valid) expect(at(loss, `valid${suffix}`, r.step).raw).toBe(num(r.loss));
  const share = chart('max-share');
  for (const r of log.train) for (const l of r.routing) expect(at(share, `L${l.layer}${suffix}`, r.step).raw).toBe(stat(l.maxShare));
  const heat = c.heatmaps[0]!;
  expect(heat.steps).toEqual(log.train.map((r) => r.step));
  expect(heat.layers).toBe(log.train[0]!.routing.length);
  log.train.forEach((r, i) =>
    r.routing.forEach((l) => {
      if (l.load === null) for (let e = 0; e < heat.experts; e++) expect(heat.load[l.layer]![e]![i], `step ${r.step}: routing n/a is a NaN cell`).toBeNaN();
      else l.load.forEach((v, e) => expect(heat.load[l.layer]![e]![i]).toBe(num(v)));
    }),
  );
  // The skipped NaN step's routing is not available: null in the log, NaN on the page.
  const nanStep = log.train.find((r) => r.skipped)!;
  expect(nanStep.routing.every((l) => l.load === null && l.maxShare === null)).toBe(true);
  expect(heat.drawn?.rows).toBe(heat.layers * heat.experts);
}

/** Smoothing, log scale, hover, byte axes, hidden panels and the zoomed heatmap, on a page that holds the finished run. */
async function expectTensorBoardHabits(p: Page, log: { train: Train[]; valid: Valid[] }): Promise<void> {
  const loss = async () => (await contents(p)).charts.find((x) => x.id === 'loss')!;
  // Smoothing from the header's number box: the drawn train line changes, the logged values do not.
  await p.locator('[data-testid=smoothing-value]').fill('0.8');
  await p.locator('[data-testid=smoothing-value]').dispatchEvent('change');
  const smooth = await loss();
  expect(smooth.smoothing).toBe(0.8);
  expect(await p.locator('[data-testid=smoothing]').inputValue()).toBe('0.8');
  const train = smooth.series.find((x) => x.label === 'train')!;
  expect(train.smoothed).toBe(true);
  const finite = log.train.filter((r) => Number.isFinite(num(r.loss)));
  for (const r of log.train) expect(at(smooth, 'train', r.step).raw, `step ${r.step}: raw kept`).toEqual(num(r.loss));
  const changed = finite.filter((r) => at(smooth, 'train', r.step).plotted !== num(r.loss));
  expect(changed.length, 'the smoothed line differs from the raw one').toBeGreaterThan(finite.length / 2);
  expect(at(smooth, 'train', NAN_STEP).plotted, 'NaN stays a gap when smoothed').toBeNull();
  // The validation points are not smoothed.
  for (const r of log.valid) expect(at(smooth, 'valid', r.step).plotted).toBe(num(r.loss));
  await p.evaluate(() => window.__dashboard.setSmoothing(0));
  for (const r of finite) expect(at(await loss(), 'train', r.step).plotted).toBe(num(r.loss));

  // The legend at a step between two validations shows the earlier one, never the later one.
  const v10 = log.valid.find((r) => r.step === 10)!;
  const v20 = log.valid.find((r) => r.step === 20)!;
  const fmt = (v: number) => String(Number(v.toPrecision(4)));
  const hover = await p.evaluate(() => window.__dashboard.hover('loss', 16));
  const valid = hover.find((h) => h.label === 'valid')!;
  expect(valid.value).toBe(`${fmt(num(v10.loss))} @ step 10`);
  expect(valid.value).not.toContain(fmt(num(v20.loss)));
  expect(hover.find((h) => h.label === 'train')!.value).toBe(fmt(num(log.train.find((r) => r.step === 16)!.loss)));

  // The log-scale toggle of a chart.
  await p.locator('[data-testid=log-loss]').check();
  expect((await loss()).log).toBe(true);
  expect(await p.evaluate(() => (window.__dashboard.charts().find((c) => c.id === 'loss')!.log ? 'log' : 'linear'))).toBe('log');
  await p.locator('[data-testid=log-loss]').uncheck();
  expect((await loss()).log).toBe(false);

  const c = await contents(p);
  // Bytes on the memory axis and legend, the axis wide enough for its widest label.
  const memory = c.charts.find((x) => x.id === 'memory')!;
  expect(memory.yAxis.labels.length).toBeGreaterThan(1);
  for (const l of memory.yAxis.labels) expect(l).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB)$/);
  expect(memory.yAxis.size).toBeGreaterThanOrEqual(memory.yAxis.widest + 12);
  const memLegend = await p.evaluate(() => window.__dashboard.hover('memory', 12));
  for (const h of memLegend) expect(h.value).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB)$/);

  // An f32 run's loss scale carries no information: hidden, and the page says why.
  const scale = c.charts.find((x) => x.id === 'loss-scale')!;
  expect(scale.hidden).toMatch(/no overflow skip \(f32 activations\)/);
  expect(await p.locator('[data-chart=loss-scale]').isVisible()).toBe(false);
  expect(await p.locator('[data-testid=hidden-panels]').textContent()).toContain('Loss scale and overflow skips');

  // Zoomed in, every logged step has its column (issue 26: grey stripes at some steps).
  for (const range of [
    { min: 3.3, max: 17.6 },
    { min: 1.2, max: 19.9 },
    { min: 7.4, max: 9.1 },
  ]) {
    await p.evaluate((r) => window.__dashboard.zoom(r), range);
    await p.waitForFunction(
      (r) =>
        Math.abs((window.__dashboard.heatmaps()[0]!.drawn?.range.min ?? -1) - r.min) < 0.5 &&
        Math.abs(window.__dashboard.heatmaps()[0]!.drawn!.range.max - r.max) < 0.5,
      range,
    );
    const drawn = (await contents(p)).heatmaps[0]!.drawn!;
    expect(drawn.columns, 'one image column per pixel').toBeGreaterThan(100);
    expect(drawn.emptyLoggedColumns, `zoom ${range.min}-${range.max}`).toBe(0);
  }
  await p.evaluate(() => window.__dashboard.zoom(null));

  // The NaN step the guards skipped, once: a note under the skipped steps, not a finding.
  expect(await p.locator('[data-testid=notes]').textContent()).toContain(`step ${NAN_STEP} was skipped by the guards`);
}

describe('dashboard in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('follows a live run, shows the NaN step with its tensor, and shows the saved run', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'wmoe-ui-'));
    const sets = [
      `schedule.steps=${STEPS}`,
      'schedule.warmupSteps=2',
      'schedule.microBatch=4',
      'logging.validEvery=10',
      'logging.validBatches=2',
      'logging.dir=runs/ui',
      'logging.progress=plain',
      'checkpoint.every=0',
      `stability.injectNan={"step":${NAN_STEP},"layer":1,"site":"router_logits"}`,
    ];
    const run = await startCli(cwd, [join(REPO, 'train.js'), '--config', join(REPO, 'small-moe.json'), ...sets.flatMap((s) => ['--set', s]), '--ui', '0']);
    expect(run.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/); // loopback unless --ui-host says otherwise

    const early = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    early.on('pageerror', (e) => errors.push(e.message));
    await early.goto(run.url);
    await early.waitForFunction((n) => Number(document.querySelector('[data-testid=step-0]')?.textContent) >= n, WAIT_STEP, { timeout: 120_000 });
    // While it runs: seconds per step from the records' ms, and the time left for schedule.steps.
    const running = await early.evaluate(() => ({
      timing: window.__dashboard.timing()[0]!,
      ms: window.__dashboard.store.runs[0]!.train.ms.slice(),
      eta: document.querySelector('[data-testid=eta-0]')?.textContent,
      perStep: document.querySelector('[data-testid=s-step-0]')?.textContent,
    }));
    expect(running.timing.totalSteps).toBe(STEPS);
    expect(running.timing.secondsPerStep).toBeGreaterThan(0);
    expect(running.ms.every((v) => v !== null && v > 0)).toBe(true);
    expect(running.perStep).toMatch(/^\d/);
    expect(running.eta, 'ETA on the run card while the run goes').toMatch(/^\d+(s|m \d+s|h \d+m)$/);

    // A page opened mid-run gets the history first, then the rest pushed.
    const late = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await late.goto(run.url);
    await late.waitForFunction(() => window.__dashboard.stats.snapshotEvents > 0);
    const lateFirst = await late.evaluate(() => window.__dashboard.store.runs[0]!.train.step.slice());
    expect(lateFirst[0]).toBe(1);
    expect(lateFirst.length).toBeGreaterThanOrEqual(WAIT_STEP);

    const code = await run.exit;
    expect(code, run.stderr()).toBe(0);
    for (const p of [early, late]) await p.waitForFunction(() => window.__dashboard.stats.state === 'ended', null, { timeout: 10_000 });
    expect(errors).toEqual([]);

    const log = readLog(join(cwd, 'runs/ui'));
    expect(log.train.map((r) => r.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    const bad = log.train.find((r) => r.step === NAN_STEP)!;
    expect(bad.skipped).toBe(true);
    expect(num(bad.loss)).toBeNaN();

    for (const p of [early, late]) {
      expectChartsHold(await contents(p), log);
      // The skipped step, with the tensor the guards named first.
      const row = p.locator(`[data-testid=skipped-row][data-step="${NAN_STEP}"]`);
      await expect(row.count()).resolves.toBe(1);
      expect(await row.textContent()).toContain(bad.nonFinite[0]!.name);
      expect(bad.nonFinite[0]!.name).toBe('model.layers.1.router_logits');
      expect(await p.locator('[data-testid=status-0]').textContent()).toBe('finished');
    }
    await expectTensorBoardHabits(early, log);
    const stats = await early.evaluate(() => window.__dashboard.stats);
    expect(stats.liveEvents, 'the early page got steps pushed, not only a history').toBeGreaterThanOrEqual(STEPS - WAIT_STEP);
    expect(await early.locator('[data-testid=adapter-0]').textContent()).toMatch(/^adapter: /);

    const shot = join(cwd, 'dashboard.png');
    await early.screenshot({ path: shot, fullPage: true });
    console.error(`[test] screenshot of the live run's page: ${shot}`);

    // The saved run, given twice: two runs overlaid, each holding the same logged values.
    const saved = await startCli(cwd, [DASHBOARD_JS, 'runs/ui', 'runs/ui/', '--port', '0']);
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(saved.url);
      // dashboard.js follows the folders: the run is over (no lock, schedule.steps reached), so "finished".
      await page.waitForFunction(() => window.__dashboard.stats.state === 'following' && window.__dashboard.stats.renders > 0);
      await page.waitForFunction(() => document.querySelector('[data-testid=status-1]')?.textContent === 'finished');
      const c = await contents(page);
      expectChartsHold(c, log, ' · runs/ui');
      expectChartsHold({ charts: c.charts, heatmaps: c.heatmaps.slice(1) }, log, ' · runs/ui (2)');
      expect(await page.locator('[data-testid=status-0]').textContent()).toBe('finished');
      await expect(page.locator('[data-testid=skipped-row]').count()).resolves.toBe(2);
      // One colour per run on every chart, the run named in each legend entry (and shown in the legend's DOM).
      for (const chart of c.charts.filter((x) => !x.hidden)) {
        const byRun = [' · runs/ui', ' · runs/ui (2)'].map((suffix) => chart.series.filter((x) => x.label.endsWith(suffix)));
        expect(byRun[0]!.length + byRun[1]!.length, `${chart.id}: every series names its run`).toBe(chart.series.length);
        const colors = byRun.map((ss) => new Set(ss.map((x) => x.color)));
        expect(
          colors.map((x) => x.size),
          `${chart.id}: one colour per run`,
        ).toEqual([1, 1]);
        expect([...colors[0]!][0], `${chart.id}: two runs, two colours`).not.toBe([...colors[1]!][0]);
      }
      const legend = await page.locator('[data-chart=loss] .u-legend').textContent();
      expect(legend).toContain('train · runs/ui');
      expect(legend).toContain('train · runs/ui (2)');
    } finally {
      saved.child.kill('SIGINT');
      expect(await saved.exit).toBe(0);
    }
  }, 240_000);
});
