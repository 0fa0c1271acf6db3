/**
 * The dashboard in a real Chromium against a real short run, started as a user types it:
 * `node train.js --config small-moe.json --set ... --ui 0`. Checks, from the page's own chart data
 * (window.__dashboard), that the charts hold what metrics.jsonl logged — loss, validation loss,
 * per-layer load and max share — that the injected NaN step is drawn as NaN and listed with its
 * tensor name, that a page opened late holds the whole history, and that dashboard.js shows the
 * saved run (twice, overlaid) the same way. Saves a screenshot.
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
      await page.waitForFunction(() => window.__dashboard.stats.state === 'ended' && window.__dashboard.stats.renders > 0);
      const c = await contents(page);
      expectChartsHold(c, log, ' · runs/ui');
      expectChartsHold({ charts: c.charts, heatmaps: c.heatmaps.slice(1) }, log, ' · runs/ui (2)');
      expect(await page.locator('[data-testid=status-0]').textContent()).toBe('saved run');
      await expect(page.locator('[data-testid=skipped-row]').count()).resolves.toBe(2);
    } finally {
      saved.child.kill('SIGINT');
      expect(await saved.exit).toBe(0);
    }
  }, 240_000);
});
