/** Run the real CLI (`node train.js`) in a scratch directory, as a user would. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, expect } from 'vitest';
import { node, type Ran } from '../support/spawn.ts';

export const TRAIN_JS = resolve(import.meta.dirname, '..', '..', 'train.js');

/** A tiny model on synthetic data: a few seconds per run on lavapipe. */
export function tinyConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    seed: 3,
    model: { preset: 'small-moe', hidden: 32, heads: 2, experts: 4, topK: 2, moeIntermediate: 16, sharedIntermediate: 32, horizons: [1, 4] },
    data: { source: { kind: 'synthetic', series: 3, length: 300, seed: 5 }, contextLength: 24, stride: 8 },
    optim: { lr: 3e-3 },
    schedule: { steps: 6, warmupSteps: 2, microBatch: 4 },
    loss: { zCoef: 1e-3, auxWarmupSteps: 3 },
    logging: { dir: 'runs/t', validEvery: 0, validBatches: 2, progress: 'plain' },
    checkpoint: { every: 3, keep: 2 },
    ...over,
  };
}

export function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'wmoe-cli-'));
}

export type CliResult = Ran;

export function runCli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return node('train.js', args, cwd, env);
}

/** A CLI run in the background: wait for a line on its output, signal it, await its exit. */
export interface LiveCli {
  child: ChildProcessWithoutNullStreams;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves once the output matches (rejects if the process exits first). */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export function startCli(cwd: string, args: string[], env: Record<string, string> = {}): LiveCli {
  const child = spawn(process.execPath, [TRAIN_JS, ...args], { cwd, env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env } });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = (stdout + stderr).match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout.on('data', (b: Buffer) => ((stdout += b.toString()), check()));
  child.stderr.on('data', (b: Buffer) => ((stderr += b.toString()), check()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`exited (${code ?? signal}) before ${w.re}:\n${stdout}\n${stderr}`));
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return {
    child,
    output: () => stdout + stderr,
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        waiters.push({ re, resolve, reject });
        check();
      }),
    exited,
  };
}

/** A scratch folder `d` with the tiny config written to `p` in it. */
export function tinyRun(): { d: string; p: string } {
  const d = scratch();
  return { d, p: writeConfig(d, tinyConfig()) };
}

export function writeConfig(dir: string, cfg: unknown, name = 'config.json'): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(cfg, null, 2));
  return p;
}

export function readMetrics(dir: string, run = 'runs/t'): Record<string, unknown>[] {
  return readFileSync(join(dir, run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A 400-step run in the background (checkpoint every `every` steps, 0: none), awaited until it
 * reaches `step`: long enough that a signal or a second process always lands mid-training.
 */
export async function startLongRun(every: number, step = 3): Promise<{ d: string; p: string; run: LiveCli }> {
  const d = scratch();
  const p = writeConfig(d, tinyConfig({ schedule: { steps: 400, warmupSteps: 2, microBatch: 4 }, checkpoint: { every, keep: 2 } }));
  const run = startCli(d, ['--config', p]);
  await run.waitFor(new RegExp(`step ${step}/400`));
  return { d, p, run };
}

/** Every file of a folder with its bytes, to show a refused run changed nothing. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p.slice(dir.length), readFileSync(p).toString('base64'));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

export type Metric = Record<string, unknown>;
/** Everything but wall-clock and memory-peak fields, which differ between identical runs. */
const strip = ({ ms, liveBytes, peakBytes, ...rest }: Metric) => (void ms, void liveBytes, void peakBytes, rest);

/** The train lines of a run's metrics, comparable across runs (see strip). */
export const trainMetrics = (d: string, run = 'runs/t'): Metric[] =>
  readMetrics(d, run)
    .filter((m) => m.kind === 'train')
    .map(strip);

/**
 * An uninterrupted tinyConfig run, made before the tests of this file (beforeAll): its folder and
 * train metrics, what a resumed run must match. Filled in once the run is done.
 */
export function finishedRun(): { dir: string; metrics: Metric[] } {
  const done = { dir: '', metrics: [] as Metric[] };
  beforeAll(async () => {
    done.dir = scratch();
    const r = await runCli(done.dir, ['--config', writeConfig(done.dir, tinyConfig())]);
    expect(r.status, r.stderr).toBe(0);
    done.metrics = trainMetrics(done.dir);
  });
  return done;
}

/** Exit 2 with the message and no stack trace: a refusal, not a crash. */
export function expectRefused(r: CliResult, message: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

/** `--set k=v` for each of `kv`, as train.js takes them. */
export const setArgs = (...kv: string[]): string[] => kv.flatMap((s) => ['--set', s]);
