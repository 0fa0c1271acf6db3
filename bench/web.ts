/**
 * The browser trainer against train.js on the same machine: `npm run bench:web [-- --steps N]`
 * writes bench/results/web.{json,md}. Needs Chromium (scripts/setup.sh); no GPU.
 *
 * The same config (small-moe.json, N steps, warmup 1) trains with `node train.js` on Node's Dawn
 * with Mesa lavapipe and in the page of `npm run build:web` in headless Chromium, whose WebGPU runs
 * on SwiftShader; never at the same time, and alternated ROUNDS times (node, page, node, page, ...)
 * so load from other work falls on both. Both are software adapters on the same 2 cores: the ratio
 * says what the browser's WebGPU stack costs here, not what a GPU does. Reported: the median step
 * time of steps 2..N over the rounds (step 1 compiles the kernels), the first step of the first
 * round, the largest relative loss difference, and the bundle's size.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildWeb } from '../scripts/web/build.ts';
import { serveWeb } from '../scripts/web/serve.ts';
import { launchChromium } from '../test/ui/browser.ts';
import { readMetrics, runCli, scratch } from '../test/train/cli-helpers.ts';
import { environment, round, writeResults, type BenchRow } from './harness.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--steps');
const STEPS = at >= 0 ? Number(args[at + 1]) : 20;
const ROUNDS = 3;
const OVERRIDES = [`schedule.steps=${STEPS}`, 'schedule.warmupSteps=1'];
// tsx compiles with esbuild's keepNames: functions handed to page.evaluate may call its __name().
const KEEP_NAMES = 'globalThis.__name ??= (f) => f';

type Rec = Record<string, unknown> & { kind: string; step: number };
const num = (v: unknown) => (typeof v === 'string' ? Number(v) : (v as number));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const train = (rs: Rec[]) => rs.filter((r) => r.kind === 'train');

const loadBefore = loadavg()[0]!;
async function nodeRun(): Promise<Rec[]> {
  const dir = scratch();
  const r = await runCli(dir, [
    '--config',
    join(import.meta.dirname, '..', 'small-moe.json'),
    ...OVERRIDES.flatMap((o) => ['--set', o]),
    '--set',
    'logging.dir=run',
    '--set',
    'logging.progress=plain',
  ]);
  if (r.status !== 0) throw new Error(`train.js exited ${r.status}:\n${r.stderr}`);
  return readMetrics(dir, 'run') as Rec[];
}

const build = await buildWeb(mkdtempSync(join(tmpdir(), 'wmoe-web-bench-')));
const server = await serveWeb(build.out, 0);
const browser = await launchChromium({ webgpu: true });
const nodeRuns: Rec[][] = [];
const webRuns: Rec[][] = [];
try {
  const page = await browser.newPage();
  await page.addInitScript(KEEP_NAMES);
  await page.goto(server.url);
  await page.waitForFunction(() => window.__webTrainer?.state === 'ready', null, { timeout: 180_000 });
  await page.fill('[data-testid=overrides]', OVERRIDES.join('\n'));
  await page.click('[data-testid=plan]');
  for (let round = 0; round < ROUNDS; round++) {
    nodeRuns.push(await nodeRun());
    // Each Train is a fresh run of the same config (the page's runs are its records after the last one).
    const before = await page.evaluate(() => window.__webTrainer.records.length);
    await page.click('[data-testid=train]');
    await page.waitForFunction(() => window.__webTrainer.state !== 'training', null, { timeout: 3_600_000, polling: 500 });
    const end = await page.evaluate(() => ({ state: window.__webTrainer.state, message: window.__webTrainer.message }));
    if (end.state !== 'done') throw new Error(`the page's run ended ${end.state}: ${end.message}`);
    webRuns.push(((await page.evaluate(() => window.__webTrainer.records)) as Rec[]).slice(before));
  }
} finally {
  await browser.close();
  await server.close();
}

let worst = 0;
for (const w of webRuns)
  for (const n of nodeRuns)
    train(w).forEach((x, i) => (worst = Math.max(worst, Math.abs(num(x.loss) - num(train(n)[i]!.loss)) / Math.abs(num(train(n)[i]!.loss)))));
const steady = (runs: Rec[][]) =>
  median(
    runs.flatMap((rs) =>
      train(rs)
        .slice(1)
        .map((x) => num(x.ms)),
    ),
  );
const row = (runtime: string, runs: Rec[][]): BenchRow => ({
  runtime,
  'ms/step (median of 2..N, all rounds)': round(steady(runs), 0),
  'per round': runs
    .map((rs) =>
      round(
        median(
          train(rs)
            .slice(1)
            .map((x) => num(x.ms)),
        ),
        0,
      ),
    )
    .join(' / '),
  'first step ms (round 1)': round(num(train(runs[0]!)[0]!.ms), 0),
  'final train loss': round(num(train(runs[0]!).at(-1)!.loss), 5),
});
const rows = [row('node train.js, Dawn on lavapipe', nodeRuns), row('Chromium page, Dawn on SwiftShader', webRuns)];
const ratio = round(steady(webRuns) / steady(nodeRuns), 2);
const js = readFileSync(join(build.out, 'app.js'));
const sizes: BenchRow[] = Object.entries(build.files).map(([file, bytes]) => ({
  file,
  KiB: round(bytes / 1024, 1),
  'gzip -9 KiB': round(gzipSync(readFileSync(join(build.out, file)), { level: 9 }).length / 1024, 1),
}));
const out = writeResults(
  'web',
  [
    {
      title: `small-moe.json, ${STEPS} steps: the page vs train.js`,
      rows,
      notes: [
        `Chromium / Node step time: ${ratio}x (both software adapters on the same cores; ${ROUNDS} rounds, alternated, never at the same time)`,
        `largest relative difference of a step's loss over the ${STEPS} steps, any page run against any node run: ${worst.toExponential(2)}`,
        `1-minute load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after, on ${environment().cores} cores: when it is above the core count, other work shared the CPU and the times are noisy`,
      ],
    },
    {
      title: 'the bundle (npm run build:web)',
      rows: sizes,
      notes: [`app.js ${(js.length / 1024).toFixed(1)} KiB minified, with ${build.shaders} shaders embedded`],
    },
  ],
  environment(),
);
console.error(`bench:web: ${out.md}`);
