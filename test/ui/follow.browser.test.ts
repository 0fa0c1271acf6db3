/**
 * A run started without --ui, watched with dashboard.js while it trains, in headless Chromium:
 * `node train.js --config small-moe-classifier.json --set model.init.headStd=1.0 ...` (no --ui),
 * then `node dashboard.js <its folder>` as soon as the folder is locked. The page must see steps
 * arrive while its badge says "running", then "finished" once the process is gone, and hold every
 * logged step. The head std 1.0 start is the bad-start finding (docs/FINDINGS.md): the page's own
 * Diagnoser finds what the run wrote to findings.json, shows it in the findings panel and marks its
 * first step on the loss chart.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './browser.ts';
import { DASHBOARD_JS, REPO, startCli } from './helpers.ts';

const STEPS = 12;

async function until(what: string, f: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('dashboard.js follows a run in progress', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows steps as they are logged, running -> finished, and the run’s bad-start finding', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'wmoe-follow-'));
    const sets = [
      `schedule.steps=${STEPS}`,
      'schedule.warmupSteps=1',
      'model.init.headStd=1.0',
      'logging.validEvery=6',
      'logging.validBatches=2',
      'logging.dir=runs/cls',
      'logging.progress=plain',
      'checkpoint.every=0',
    ];
    const train = spawn(process.execPath, [join(REPO, 'train.js'), '--config', join(REPO, 'small-moe-classifier.json'), ...sets.flatMap((s) => ['--set', s])], {
      cwd,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    });
    let trainErr = '';
    train.stderr.on('data', (d: Buffer) => (trainErr += d.toString()));
    train.stdout.resume();
    const trained = new Promise<number | null>((res) => train.on('exit', (code) => res(code)));
    const dir = join(cwd, 'runs/cls');
    // The run takes its folder's lock before anything else; dashboard.js may start from then on.
    await until('the run folder’s lock', () => existsSync(join(dir, 'lock')), 60_000);
    const dash = await startCli(cwd, [DASHBOARD_JS, 'runs/cls', '--port', '0']);
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(dash.url);
      // What the page shows, read every 100 ms until the run is over.
      const seen: { status: string; step: number }[] = [];
      let code: number | null | undefined;
      void trained.then((c) => (code = c));
      const read = async () => {
        const v = await page.evaluate(() => ({
          status: document.querySelector('[data-testid=status-0]')?.textContent ?? '',
          step: window.__dashboard.store.runs[0]?.train.step.length ?? 0,
        }));
        seen.push(v);
        return v;
      };
      for (const end = Date.now() + 240_000; ;) {
        const v = await read();
        if (v.status === 'finished' || Date.now() > end) break;
        await page.waitForTimeout(100);
      }
      expect(code ?? (await trained), trainErr).toBe(0);
      expect(trainErr, 'started without --ui').not.toContain('[ui]');
      // The badge said running while the page had fewer steps than the run would log: the rest
      // arrived as the run wrote them (here, on 2 slow cores, several distinct counts are seen).
      const running = seen.filter((s) => s.status === 'running');
      expect(running.length, JSON.stringify(seen.slice(0, 5))).toBeGreaterThan(0);
      expect(Math.min(...running.map((s) => s.step)), 'the page was open before the last steps were logged').toBeLessThan(STEPS);
      console.error(`[test] step counts seen while running: ${[...new Set(running.map((s) => s.step))].join(', ')}`);
      const pushed = await page.evaluate(() => window.__dashboard.stats.liveEvents);
      expect(pushed, 'records pushed to the page after its first load').toBeGreaterThan(0);
      expect(seen.at(-1)!.status).toBe('finished');
      // Never "finished" before the last step.
      const firstFinished = seen.findIndex((s) => s.status === 'finished');
      expect(seen.slice(firstFinished).every((s) => s.status === 'finished')).toBe(true);
      await page.waitForFunction((n) => window.__dashboard.store.runs[0]!.train.step.length === n, STEPS);

      // Every logged step, in order.
      const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as { kind: string; step: number; loss: number });
      const page1 = await page.evaluate(() => ({
        steps: window.__dashboard.store.runs[0]!.train.step.slice(),
        loss: window.__dashboard.store.runs[0]!.train.loss.slice(),
        valid: window.__dashboard.store.runs[0]!.valid.step.slice(),
      }));
      expect(page1.steps).toEqual(lines.filter((r) => r.kind === 'train').map((r) => r.step));
      expect(page1.loss).toEqual(lines.filter((r) => r.kind === 'train').map((r) => r.loss));
      expect(page1.valid).toEqual(lines.filter((r) => r.kind === 'valid').map((r) => r.step));

      // The findings: the same as the run's own findings.json, bad-start among them, marked on the loss chart.
      await page.waitForTimeout(400); // one redraw after the last event
      const own = JSON.parse(readFileSync(join(dir, 'findings.json'), 'utf8')) as { findings: { id: string; firstStep: number }[] };
      const found = await page.evaluate(() => window.__dashboard.findings()[0]!.findings.map((f) => ({ id: f.id, firstStep: f.firstStep, title: f.title })));
      expect(found.map((f) => f.id).sort()).toEqual(own.findings.map((f) => f.id).sort());
      const bad = found.find((f) => f.id === 'bad-start');
      expect(bad, JSON.stringify(found)).toBeDefined();
      const card = page.locator('[data-testid=finding][data-finding-id=bad-start]');
      await expect(card.count()).resolves.toBe(1);
      const text = await card.textContent();
      expect(text).toContain(bad!.title);
      expect(text).toContain('--set model.init.headStd=0.02');
      expect(text).toContain('npm run experiment -- head-init');
      const loss = await page.evaluate(() => window.__dashboard.charts().find((c) => c.id === 'loss')!);
      expect(loss.events).toContainEqual(expect.objectContaining({ x: bad!.firstStep, label: 'bad-start' }));
      expect(loss.x).toContain(bad!.firstStep);
      expect(errors).toEqual([]);
      const shot = join(cwd, 'follow.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.error(`[test] screenshot of the followed run: ${shot}`);
    } finally {
      train.kill('SIGINT');
      dash.child.kill('SIGINT');
      expect(await dash.exit).toBe(0);
    }
  }, 300_000);
});
