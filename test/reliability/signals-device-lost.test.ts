/**
 * Issue 23, a GPU device lost mid-run, through the real CLI. The loss is real to Dawn: the
 * test-only fault point WEBGPU_MOE_FAULT=DEVICE_LOST@step-K (src/train/run/faults.ts) calls
 * GPUDevice.destroy() just before step K is recorded. The run stops (exit 1) with a `stopped:`
 * line naming the step, Dawn's reason and the last good checkpoint (or that none was saved), the
 * lock is released, nothing saved is lost, and --resume then ends exactly as an uninterrupted run.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, scratch, tinyConfig, writeConfig, trainMetrics, finishedRun, tinyRun } from '../train/cli-helpers.ts';

const STACK = /^\s{4}at /m;

const baseline = finishedRun();

describe('device lost mid-run', () => {
  it('after a checkpoint: stopped at step 5, names step-3 and --resume (exit 1); --resume ends as an uninterrupted run', async () => {
    const { d, p } = tinyRun();
    const r = await runCli(d, ['--config', p], { WEBGPU_MOE_FAULT: 'DEVICE_LOST@step-5' });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /^stopped: the GPU device was lost at step 5 \(destroyed: device was destroyed\): the last good checkpoint is runs\/t\/checkpoints\/step-3 \(continue with --resume\)\. The weights on the device are gone, so nothing was saved at this point; if it happens again, check the GPU/m,
    );
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.stdout + r.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
    expect(readFileSync(join(d, 'runs/t/checkpoints/latest'), 'utf8').trim()).toBe('step-3');

    const again = await runCli(d, ['--config', p, '--resume']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/stale lock/);
    expect(again.stderr).toContain('continuing after step 3');
    expect(trainMetrics(d)).toEqual(baseline.metrics);
  });

  it('before any checkpoint: says none was saved and to start again with --overwrite, which then works', async () => {
    const { d, p } = tinyRun();
    const r = await runCli(d, ['--config', p], { WEBGPU_MOE_FAULT: 'DEVICE_LOST@step-2' });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /^stopped: the GPU device was lost at step 2 \(destroyed: device was destroyed\): no checkpoint was saved yet: start again with --overwrite\./m,
    );
    expect(r.stdout + r.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
    const again = await runCli(d, ['--config', p, '--overwrite']);
    expect(again.status, again.stderr).toBe(0);
    expect(trainMetrics(d)).toEqual(baseline.metrics);
  });

  it('with steps recorded ahead (logging.metricsEvery 4): the same stop', async () => {
    const d = scratch();
    const p = writeConfig(d, tinyConfig({ logging: { dir: 'runs/t', validEvery: 0, validBatches: 2, progress: 'plain', metricsEvery: 4 } }));
    const r = await runCli(d, ['--config', p], { WEBGPU_MOE_FAULT: 'DEVICE_LOST@step-5' });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /^stopped: the GPU device was lost at step \d \(destroyed: device was destroyed\): the last good checkpoint is runs\/t\/checkpoints\/step-3 \(continue with --resume\)/m,
    );
    expect(r.stdout + r.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
  });
});
