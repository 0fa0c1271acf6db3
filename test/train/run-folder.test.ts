/**
 * Run folders (issue 14, items 1, 2, 3, 5), through the CLI as a user types it: a fresh run never
 * mixes with or truncates an existing run, a second process is kept out by the lock (stale locks
 * are named and replaced), a refused run writes nothing, and an absolute logging.dir is honoured.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics, runCli, scratch, tinyConfig, writeConfig, snapshot, startLongRun, tinyRun } from './cli-helpers.ts';
import { spawnAsync } from '../support/spawn.ts';

const trainSteps = (d: string, run = 'runs/t') =>
  readMetrics(d, run)
    .filter((m) => m.kind === 'train')
    .map((m) => m.step);

describe('a fresh run into a folder that holds a run', () => {
  it('is refused (exit 2), naming --resume, a new logging.dir and --overwrite, and changes nothing', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p])).status).toBe(0);
    const before = snapshot(join(d, 'runs/t'));
    const r = await runCli(d, ['--config', p, '--set', 'schedule.steps=4']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/runs\/t already holds a run \(metrics\.jsonl up to step 6; checkpoints step-3, step-6\)/);
    expect(r.stderr).toMatch(/--resume/);
    expect(r.stderr).toMatch(/--set logging\.dir=runs\/t-2/);
    expect(r.stderr).toMatch(/--overwrite to move the old run into runs\/t\/set-aside\//);
    expect(r.stderr).not.toMatch(/adapter:/); // refused before the device was opened
    expect(snapshot(join(d, 'runs/t'))).toEqual(before);
  });

  it('--overwrite moves the old run aside, whole, and starts clean', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p])).status).toBe(0);
    const old = snapshot(join(d, 'runs/t'));
    const r = await runCli(d, ['--config', p, '--overwrite', '--set', 'schedule.steps=4', '--set', 'schedule.warmupSteps=1']);
    expect(r.status, r.stderr).toBe(0);
    const m = r.stderr.match(/\[overwrite\] the previous run in runs\/t was moved to (runs\/t\/set-aside\/\S+-overwritten) \(nothing deleted\)/);
    expect(m, r.stderr).not.toBeNull();
    // The old run is intact, byte for byte, in the set-aside folder.
    const moved = snapshot(join(d, m![1]!));
    expect([...moved.keys()].sort()).toEqual([...old.keys()].sort());
    for (const [k, v] of old) expect(moved.get(k), k).toBe(v);
    // The new run alone is in the folder: its steps, its checkpoints.
    expect(trainSteps(d)).toEqual([1, 2, 3, 4]);
    expect(readdirSync(join(d, 'runs/t/checkpoints')).sort()).toEqual(['latest', 'step-3', 'step-4']);
  });

  it('--overwrite with --resume is refused as contradictory', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--overwrite', '--resume']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--overwrite starts a fresh run .* pass one of them/);
  });
});

describe('the run lock', () => {
  it('a second process into the same folder is refused while the first runs; the first is unharmed', async () => {
    const { d, p, run: first } = await startLongRun(0, 2);
    const lock = JSON.parse(readFileSync(join(d, 'runs/t/lock'), 'utf8')) as { pid: number; host: string; startedAt: string };
    expect(lock).toMatchObject({ pid: first.child.pid, host: hostname() });
    const second = await runCli(d, ['--config', p, '--resume']);
    expect(second.status, second.stderr).toBe(2);
    expect(second.stderr).toContain(
      `runs/t is in use by another run (pid ${first.child.pid} on host ${hostname()}, started ${lock.startedAt}: node train.js --config ${p}; lock file runs/t/lock)`,
    );
    const fresh = await runCli(d, ['--config', p]);
    expect(fresh.status).toBe(2);
    expect(fresh.stderr).toMatch(/in use by another run/);
    first.child.kill('SIGINT');
    const end = await first.exited;
    expect(end.code, end.stderr).toBe(130);
    // One step sequence in the log: the first run's, no interleaving.
    const steps = trainSteps(d);
    expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
  });

  it('a lock left by a SIGKILLed run is stale: named, replaced, and --resume continues', async () => {
    const { d, p, run } = await startLongRun(2);
    run.child.kill('SIGKILL');
    await run.exited;
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(true);
    const r = await runCli(d, ['--config', p, '--resume', '--stop-after', '5']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`[lock] runs/t/lock: replacing a stale lock (pid ${run.child.pid} on host ${hostname()}`);
    expect(r.stderr).toMatch(/that process is no longer running\)/);
    expect(r.stderr).toMatch(/continuing after step 2/);
  });

  it('a lock from another host is not judged from here: refused, with the lock file to delete', async () => {
    const { d, p } = tinyRun();
    const dead = (await spawnAsync(process.execPath, ['-e', '0'])).pid;
    const runDir = join(d, 'runs/t');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(
      join(runDir, 'lock'),
      JSON.stringify({ pid: dead, host: 'gpu-node-7', startedAt: '2026-01-01T00:00:00.000Z', command: 'node train.js --config x.json' }),
    );
    const r = await runCli(d, ['--config', p]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /in use by another run \(pid \d+ on host gpu-node-7, started 2026-01-01T00:00:00.000Z: node train.js --config x\.json; lock file runs\/t\/lock\)/,
    );
    expect(r.stderr).toMatch(/if that run is over, delete the lock file/);
    writeFileSync(join(runDir, 'lock'), 'garbage');
    const g = await runCli(d, ['--config', p]);
    expect(g.status).toBe(2);
    expect(g.stderr).toMatch(/runs\/t\/lock is not a lock file this program wrote .*delete it/);
  });
});

describe('nothing is written until every check has passed', () => {
  it('a resume refused for a config mismatch leaves plan.txt, metrics and checkpoints as they were', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p, '--stop-after', '3'])).status).toBe(0);
    const before = snapshot(join(d, 'runs/t'));
    // --allow-config-change gets past the config check (test/reliability/resume-config-change.test.ts) to the checkpoint's own shape check.
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'model.hidden=64', '--set', 'model.heads=4', '--allow-config-change', 'model']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/does not match the model/);
    expect(r.stderr).toMatch(/checkpoints here: step-3/);
    expect(snapshot(join(d, 'runs/t'))).toEqual(before);
  });

  it('a fresh run refused for bad data does not even create its folder', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'missing.csv' }, contextLength: 24 } }))]);
    expect(r.status).toBe(2);
    expect(existsSync(join(d, 'runs'))).toBe(false);
  });
});

describe('an absolute logging.dir', () => {
  it('is used as given, and the messages name where the files really are', async () => {
    const d = scratch();
    const abs = join(mkdtempSync(join(tmpdir(), 'wmoe-abs-')), 'run');
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', `logging.dir=${abs}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(abs, 'metrics.jsonl'))).toBe(true);
    expect(existsSync(join(abs, 'checkpoints/step-6/model.safetensors'))).toBe(true);
    expect(existsSync(join(abs, 'plan.txt'))).toBe(true);
    expect(readdirSync(d)).toEqual(['config.json']); // nothing under the cwd
    expect(r.stdout).toContain(`metrics in ${abs}/metrics.jsonl`);
    const again = await runCli(d, ['--config', join(d, 'config.json'), '--set', `logging.dir=${abs}`]);
    expect(again.stderr).toContain(`${abs} already holds a run`);
  });
});
