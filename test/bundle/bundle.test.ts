/**
 * The self-contained bundle (npm run bundle) on a machine with a Vulkan driver and nothing else:
 * from an empty folder, with no node on PATH and no node_modules, every command runs: train (with
 * its live dashboard, --ui 0) for 5 steps on lavapipe, then forecast, export, diagnose and the
 * dashboard on that run; the help names every command; the first run says what it unpacks, and
 * the folder grows by exactly that (caches go to $HOME/.cache). And the prepared GPU check
 * (bench/gpu/check.sh --quick) runs through it and writes a report whose matmuls passed their
 * float64 check and whose plans equal the measured peaks.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
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

/** A command started in the background, with its output so far and a promise of its exit. */
function start(
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcessWithoutNullStreams; out: { stdout: string; stderr: string }; exit: Promise<number | null> } {
  const child = spawn(join(bundle, 'run.sh'), args, { cwd: bundle, env, timeout: 240_000 });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  return { child, out, exit: new Promise((done) => child.on('close', (code) => done(code))) };
}

/** The URL a command printed on stderr (the dashboard's), once it has. */
async function printedUrl(out: { stderr: string }, exit: Promise<number | null>): Promise<string> {
  let ended = false;
  void exit.then(() => (ended = true));
  for (;;) {
    const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out.stderr);
    if (m) return m[1]!;
    if (ended) throw new Error(`it exited without printing a URL:\n${out.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The dashboard page and its script, as a browser would fetch them. */
async function fetchPage(url: string): Promise<{ html: string; js: string }> {
  const html = await (await fetch(url)).text();
  const js = await fetch(`${url}app.js`);
  expect(js.status).toBe(200);
  return { html, js: await js.text() };
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
let env: NodeJS.ProcessEnv = {};
/** The folder as built, before any command ran: its size and its top-level entries. */
let built = { bytes: 0, entries: [] as string[] };
beforeAll(async () => {
  const b = await run(process.execPath, [join(ROOT, 'scripts', 'bundle', 'bundle.mjs'), '--out', bundle], { env: process.env, timeout: 240_000 });
  if (b.status !== 0) throw new Error(`npm run bundle failed:\n${b.stderr}`);
  PATH = bareBin();
  env = { PATH, HOME: work };
  built = { bytes: size(bundle), entries: readdirSync(bundle).sort() };
}, 240_000);

// The bundle unpacked is about 160 MiB: not left behind in /tmp.
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sh = (args: string[]) => run(join(bundle, 'run.sh'), args, { cwd: bundle, env, timeout: 240_000 });

describe('the self-contained bundle', () => {
  it('stays under 60 MiB and holds no node_modules of the repository', () => {
    expect(built.bytes).toBeLessThan(60 * 2 ** 20);
    expect(existsSync(join(bundle, 'node_modules'))).toBe(false);
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH } }).status).not.toBe(0);
  });

  it('its help names every command, with no stray shell lines; an unknown command exits 2', async () => {
    const help = await sh(['help']);
    expect(help.status).toBe(0);
    for (const c of ['train', 'forecast', 'export', 'dashboard', 'diagnose', 'bench', 'gpu-check', 'node'])
      expect(help.stdout).toMatch(new RegExp(`^  \\./run\\.sh ${c} `, 'm'));
    expect(help.stdout).not.toMatch(/set -eu|^#|HERE=/m);
    const bare = await sh([]);
    expect(bare.status).toBe(2);
    expect(bare.stderr).toBe(help.stdout);
    const unknown = await sh(['tran']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^run\.sh: unknown command "tran"/);
    // Nothing was unpacked for the help.
    expect(size(bundle)).toBe(built.bytes);
  });

  it('train --ui 0: trains small-moe for 5 steps under its live dashboard, with no node on PATH', async () => {
    const t = start(
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
        '--ui',
        '0',
      ],
      env,
    );
    const page = await fetchPage(await printedUrl(t.out, t.exit));
    expect(page.html).toMatch(/<script[^>]+src="\/app\.js"/);
    expect(page.js.length).toBeGreaterThan(10_000);
    const status = await t.exit;
    expect(status, t.out.stderr).toBe(0);
    expect(t.out.stderr).not.toMatch(/__filename|ReferenceError|^\s+at /m);
    expect(t.out.stdout).toMatch(/^done: 5 steps; validation loss [\d.]+ -> [\d.]+/m);
    const steps = readFileSync(join(bundle, 'runs', 'bundle', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; loss: unknown });
    const train = steps.filter((s) => s.kind === 'train');
    expect(train).toHaveLength(5);
    for (const s of train) expect(Number.isFinite(s.loss)).toBe(true);

    // The first run said what it unpacked, and the folder grew by exactly that and the run's folder
    // (the Vulkan loader too, on a machine without one); caches went to $HOME/.cache.
    expect(t.out.stderr).toMatch(/^run\.sh: first run: unpacking bin\/node \(\d+ MiB\) beside its \.gz, once$/m);
    expect(t.out.stderr).toMatch(/^run\.sh: first run: unpacking lib\/node_modules\/webgpu\/dist\/linux-x64\/dawn\.node \(\d+ MiB\) beside its \.gz, once$/m);
    const unpacked = size(join(bundle, 'bin', 'node')) + size(join(bundle, 'lib', 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node'));
    const vulkan = existsSync(join(bundle, 'vulkan')) ? size(join(bundle, 'vulkan')) : 0;
    expect(size(bundle) - built.bytes).toBe(unpacked + vulkan + size(join(bundle, 'runs')));
    expect(readdirSync(bundle).sort()).toEqual([...built.entries, 'runs', ...(vulkan ? ['vulkan'] : [])].sort());
  }, 300_000);

  it('forecast --evaluate on that run, saying nothing more about unpacking', async () => {
    const r = await sh(['forecast', '--checkpoint', 'runs/bundle', '--evaluate']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toMatch(/first run: unpacking/);
    const evaluation = JSON.parse(readFileSync(join(bundle, 'runs', 'bundle', 'forecast', 'evaluation.json'), 'utf8')) as unknown;
    expect(evaluation).toBeTypeOf('object');
    expect(readFileSync(join(bundle, 'runs', 'bundle', 'forecast', 'forecasts.csv'), 'utf8').split('\n').length).toBeGreaterThan(2);
  }, 240_000);

  it('export writes a Hugging Face folder of that run', async () => {
    const r = await sh(['export', '--checkpoint', 'runs/bundle', '--out', 'hf/bundle']);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(join(bundle, 'hf', 'bundle')).sort()).toEqual(['SHA256SUMS', 'config.json', 'model.safetensors']);
    expect((JSON.parse(readFileSync(join(bundle, 'hf', 'bundle', 'config.json'), 'utf8')) as { model_type: string }).model_type).toBe('time_moe');
  }, 240_000);

  it('diagnose --json reads that run', async () => {
    const r = await sh(['diagnose', 'runs/bundle', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const runs = JSON.parse(r.stdout) as { findings: unknown[] }[];
    expect(runs).toHaveLength(1);
    expect(Array.isArray(runs[0]!.findings)).toBe(true);
  }, 240_000);

  it('dashboard serves that run until Ctrl-C, then exits 0', async () => {
    const d = start(['dashboard', 'runs/bundle', '--port', '0'], env);
    const url = await printedUrl(d.out, d.exit);
    const page = await fetchPage(url);
    expect(page.html).toMatch(/webgpu-moe dashboard/);
    const snapshot = await (await fetch(`${url}api/snapshot`)).text();
    expect(snapshot).toMatch(/"kind":"train"/);
    d.child.kill('SIGINT');
    expect(await d.exit, d.out.stderr).toBe(0);
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
