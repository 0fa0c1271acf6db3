/**
 * A child process awaited without blocking: spawnSync would stop this test worker's event loop for
 * the child's whole run, and vitest's worker answers its runner over an RPC with a fixed 60 s
 * timeout, so a CLI run slower than that under load failed the suite ("Timeout calling
 * onTaskUpdate") with every test passing.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

export interface SpawnResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number | undefined;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child (SIGTERM) after this many ms, as spawnSync's timeout does. */
  timeout?: number;
  /** Output is always decoded as UTF-8 (spawnSync's encoding option, accepted for symmetry). */
  encoding?: 'utf8';
  uid?: number;
  gid?: number;
}

export function spawnAsync(command: string, args: readonly string[], opts: SpawnOptions = {}): Promise<SpawnResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      timeout: opts.timeout,
      uid: opts.uid,
      gid: opts.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr, pid: child.pid }));
  });
}

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A script of the repository (train.js, forecast.js, ...) run by node in `cwd`, as a user runs it. */
export async function node(script: string, args: string[], cwd: string, env: Record<string, string> = {}, as?: { uid: number; gid: number }): Promise<Ran> {
  const r = await spawnAsync(process.execPath, [join(ROOT, script), ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env },
    ...as,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
