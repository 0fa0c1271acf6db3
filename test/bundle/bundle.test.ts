/**
 * The self-contained bundle (npm run bundle) on a machine with a Vulkan driver and nothing else:
 * from an empty folder, with no node on PATH and no node_modules, it trains small-moe for 5 steps
 * on lavapipe; and the prepared GPU check (bench/gpu/check.sh --quick) runs through it and writes
 * a report whose matmuls passed their float64 check and whose plans equal the measured peaks.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'wmoe-bundle-'));
const bundle = join(work, 'webgpu-moe-linux-x64');

/** A PATH with the few tools run.sh and check.sh use, and no node. */
function bareBin(): string {
  const bin = join(work, 'bin');
  mkdirSync(bin);
  for (const tool of [
    'sh',
    'bash',
    'gzip',
    'mv',
    'chmod',
    'grep',
    'dirname',
    'sed',
    'ls',
    'mkdir',
    'tar',
    'dpkg-deb',
    'ar',
    'cat',
    'env',
    'tee',
    'timeout',
    'date',
    'ldconfig',
    'python3',
  ]) {
    const r = spawnSync('sh', ['-c', `command -v ${tool} || ls /sbin/${tool} 2>/dev/null`], { encoding: 'utf8' });
    const path = r.stdout.trim().split('\n')[0];
    if (path && !path.includes('/node')) symlinkSync(path, join(bin, tool));
  }
  return bin;
}

/** A child process, awaited without blocking the test worker (long sync calls starve vitest's RPC). */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv; timeout: number },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeout });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => done({ status, stdout, stderr }));
  });
}

function size(p: string): number {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((a, n) => a + size(join(p, n)), 0) : s.size;
}

let PATH = '';
beforeAll(async () => {
  const b = await run(process.execPath, [join(ROOT, 'scripts', 'bundle', 'bundle.mjs'), '--out', bundle], { env: process.env, timeout: 240_000 });
  if (b.status !== 0) throw new Error(`npm run bundle failed:\n${b.stderr}`);
  PATH = bareBin();
}, 240_000);

describe('the self-contained bundle', () => {
  it('stays under 60 MiB and holds no node_modules of the repository', () => {
    expect(size(bundle)).toBeLessThan(60 * 2 ** 20);
    expect(existsSync(join(bundle, 'node_modules'))).toBe(false);
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH } }).status).not.toBe(0);
  });

  it('trains small-moe for 5 steps with no node on PATH', async () => {
    const r = await run(
      './run.sh',
      [
        'train',
        '--config',
        'small-moe.json',
        '--set',
        'schedule.steps=5',
        '--set',
        'schedule.warmupSteps=1',
        '--set',
        'logging.validEvery=0',
        '--set',
        'logging.validBatches=1',
        '--set',
        'logging.progress=none',
        '--set',
        'logging.dir=runs/bundle',
      ],
      {
        cwd: bundle,
        env: { PATH, HOME: work },
        timeout: 240_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^done: 5 steps; validation loss [\d.]+ -> [\d.]+/m);
    const steps = readFileSync(join(bundle, 'runs', 'bundle', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; loss: unknown });
    const train = steps.filter((s) => s.kind === 'train');
    expect(train).toHaveLength(5);
    for (const s of train) expect(Number.isFinite(s.loss)).toBe(true);
  }, 240_000);

  it('runs the GPU check (quick) and writes a report with checked matmuls and exact plans', async () => {
    const out = join(work, 'gpu-check');
    const r = await run('bash', [join(ROOT, 'bench', 'gpu', 'check.sh'), out, '--quick'], {
      env: { PATH, HOME: work, WEBGPU_MOE_BUNDLE: bundle },
      timeout: 300_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'gpu-check.json'), 'utf8')) as {
      matmul: { checked: string }[];
      plan: { equal: string }[];
      errors: string[];
    };
    expect(report.errors).toEqual([]);
    expect(report.matmul.length).toBeGreaterThan(0);
    for (const m of report.matmul) expect(m.checked).toMatch(/^ok/);
    expect(report.plan.length).toBeGreaterThan(0);
    for (const p of report.plan) expect(p.equal).toBe('yes');
    expect(readFileSync(join(out, 'gpu-check.md'), 'utf8')).toMatch(/## Matmul/);
  }, 300_000);
});
