/** Run the real CLI (`node train.js`) in a scratch directory, as a user would. */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnAsync } from '../support/spawn.ts';

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

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export async function runCli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await spawnAsync(process.execPath, [TRAIN_JS, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
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
