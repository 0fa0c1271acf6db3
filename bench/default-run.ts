/**
 * The README's default run, measured through the CLI a user types: `node train.js --config
 * small-moe.json` (f32, the default) and its f16 twin (`--set precision.activations=f16`), same
 * seed and data, one after the other. Writes bench/results/default-run.{json,md}: wall time, exit
 * code, validation loss before/after, tokens/s (median of the steps), peak pool bytes, loss-scale
 * overflow skips, and the f32 run's console output (step lines every 100th step; every other line
 * as printed) in default-run.console.txt, which is what the README's quick start shows.
 * Run: node --import tsx bench/default-run.ts [--steps N]   (about 6 minutes on an idle 2-core lavapipe)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import type { RunMetrics } from '../src/report/metrics-reader.ts';
import { readMetrics } from '../src/report/metrics-file.ts';
import { environment, round, summarize, writeResults, type BenchRow } from './harness.ts';

const ROOT = join(import.meta.dirname, '..');
const stepsArg = process.argv.indexOf('--steps');
const steps = stepsArg >= 0 ? Number(process.argv[stepsArg + 1]) : null;

interface RunOutcome {
  name: string;
  code: number | null;
  wallS: number;
  lines: string[];
  metrics: RunMetrics;
  /** The run folder (removed after the run); the console shows it as runs/small-moe. */
  dir: string;
}

/** One CLI run into a fresh folder; stdout and stderr lines kept in arrival order. */
async function cliRun(name: string, extra: string[]): Promise<RunOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'default-run-'));
  const args = ['train.js', '--config', 'small-moe.json', '--set', `logging.dir=${join(dir, 'run')}`, '--set', 'logging.progress=plain', ...extra];
  if (steps !== null) args.push('--set', `schedule.steps=${steps}`, '--set', `schedule.warmupSteps=${Math.min(30, Math.floor(steps / 4))}`);
  const lines: string[] = [];
  const t0 = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [child.stdout, child.stderr]) {
      let rest = '';
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        lines.push(...parts);
      });
      s.on('end', () => rest && lines.push(rest));
    }
    child.on('close', (c) => resolve(c));
  });
  const wallS = (performance.now() - t0) / 1000;
  const metrics = readMetrics(join(dir, 'run', 'metrics.jsonl'));
  rmSync(dir, { recursive: true, force: true });
  console.error(`${name}: exit ${code}, ${wallS.toFixed(1)} s`);
  return { name, code, wallS, lines, metrics, dir: join(dir, 'run') };
}

function summaryRow(r: RunOutcome): BenchRow {
  const { train, valid } = r.metrics;
  const tokS = train.filter((m) => m.ms && m.tokens).map((m) => ((m.tokens ?? 0) * 1000) / (m.ms ?? 1));
  const ms = summarize(
    train.map((m) => m.ms ?? 0),
    1,
  );
  return {
    run: r.name,
    exit: r.code ?? 'signal',
    steps: train.length,
    'wall s': round(r.wallS, 1),
    'ms/step median': round(ms.medianMs, 1),
    'ms/step min–max': `${round(ms.bestMs, 0)}–${round(ms.maxMs, 0)}`,
    'tok/s median': round(summarize(tokS, 1).medianMs, 0),
    'valid loss before': round(valid[0]?.loss ?? NaN, 4),
    'valid loss after': round(valid.at(-1)?.loss ?? NaN, 4),
    'valid mse@1 before → after': `${round(valid[0]?.horizons?.[0]?.mse ?? NaN, 4)} → ${round(valid.at(-1)?.horizons?.[0]?.mse ?? NaN, 4)}`,
    'peak pool MiB': round(Math.max(...train.map((m) => m.peakBytes ?? 0)) / 2 ** 20, 1),
    'overflow skips': train.filter((m) => m.overflow).length,
    'last overflow step': train.filter((m) => m.overflow).at(-1)?.step ?? '',
    'final loss scale': train.at(-1)?.lossScale ?? '',
  };
}

/** The console as the README shows it: every line, but step lines only every 100th step. */
function consoleExcerpt(lines: readonly string[], dir: string): string {
  return lines
    .map((l) => l.replaceAll(dir, 'runs/small-moe'))
    .filter((l) => !/^Warning: maxDynamic/.test(l))
    .filter((l) => {
      const m = /^step (\d+)\//.exec(l);
      return !m || Number(m[1]) === 1 || Number(m[1]) % 100 === 0;
    })
    .join('\n');
}

const f32 = await cliRun('small-moe.json (f32)', []);
const f16 = await cliRun('small-moe.json, precision.activations=f16', ['--set', 'precision.activations=f16']);
const rt = await getRuntime({ announce: false });
const [a, b] = [summaryRow(f32), summaryRow(f16)];
const rel = (Number(b['valid loss after']) / Number(a['valid loss after']) - 1) * 100;
const files = writeResults(
  steps === null ? 'default-run' : 'default-run-quick',
  [
    {
      title: `the default run through the CLI: node train.js --config small-moe.json, f32 and f16`,
      rows: [a, b],
      notes: [
        `f16 vs f32: final validation loss ${rel >= 0 ? '+' : ''}${round(rel, 2)}%, peak pool ${round(Number(b['peak pool MiB']) / Number(a['peak pool MiB']), 2)}x.`,
        'ms/step and tok/s from metrics.jsonl (Trainer.step wall time); wall s includes data loading, validation and checkpoints. The machine may be shared: read the medians and the spread.',
      ],
    },
  ],
  environment(rt),
);
// The console goes to its own file: the README's quick start quotes it as is.
const consoleFile = files.md.replace(/\.md$/, '.console.txt');
writeFileSync(
  consoleFile,
  `$ node train.js --config small-moe.json   # f32 run, step lines every 100th step; Dawn's two limit warnings left out; the run folder was a temporary one, shown as runs/small-moe\n${consoleExcerpt(f32.lines, f32.dir)}\n`,
);
console.log(`wrote ${files.md} and ${consoleFile}`);
