/** train.js --plan as a child process, awaited without blocking the test worker (long sync spawns starve vitest's RPC). */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface PlanRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function planCli(args: readonly string[], env: Record<string, string> = {}): Promise<PlanRun> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['train.js', ...args], { cwd: ROOT, env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env }, timeout: 240_000 });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => done({ status, stdout, stderr }));
  });
}
