/**
 * Issue 23, signals: SIGHUP (the terminal closed, ssh dropped) and SIGQUIT (Ctrl-\) are handled
 * like SIGTERM through the real CLI: the step is finished, a checkpoint saved, the lock released,
 * and the run exits 128 + the signal (129 / 131, src/train/exit-codes.ts); --resume continues.
 * During data loading they stop the run before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT } from '../../src/train/exit-codes.ts';
import { runCli, scratch, startCli, tinyConfig, writeConfig, startLongRun } from '../train/cli-helpers.ts';

const STACK = /^\s{4}at /m;

describe.each([
  ['SIGHUP', EXIT.sighup, 129],
  ['SIGQUIT', EXIT.sigquit, 131],
] as const)('%s during training', (sig, code, expected) => {
  it(`finishes the step, saves a checkpoint, releases the lock, exits ${expected}; --resume continues`, async () => {
    expect(code).toBe(expected);
    const { d, p, run } = await startLongRun(0);
    run.child.kill(sig);
    const { code: exit, signal, stdout, stderr } = await run.exited;
    expect(signal, stderr).toBeNull(); // handled, not killed by the signal
    expect(exit, stdout + stderr).toBe(expected);
    expect(stderr).toMatch(
      new RegExp(
        `\\[signal\\] ${sig}( \\(the terminal closed; to keep a run going after that, start it under nohup, tmux or screen\\))?: finishing this step, saving a checkpoint, then exiting`,
      ),
    );
    const m = stdout.match(new RegExp(`stopped: ${sig} at step (\\d+): checkpoint saved at (runs/t/checkpoints/step-\\d+) \\(continue with --resume\\)`));
    expect(m, stdout + stderr).not.toBeNull();
    expect(stdout + stderr).not.toMatch(STACK);
    expect(existsSync(join(d, m![2]!, 'state.json'))).toBe(true);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false); // released: no stale lock for the next run

    const r = await runCli(d, ['--config', p, '--resume', '--stop-after', String(Number(m![1]) + 1)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/stale lock/);
    expect(r.stderr).toContain(`continuing after step ${m![1]}`);
  });
});

describe('SIGHUP when the terminal is gone', () => {
  it('output closed after the signal (writes fail with EPIPE): the checkpoint is still saved, exit 129', async () => {
    const { d, p, run } = await startLongRun(0);
    run.child.kill('SIGHUP');
    await run.waitFor(/\[signal\] SIGHUP/);
    // As a closed terminal: every later write to stdout / stderr fails.
    run.child.stdout.destroy();
    run.child.stderr.destroy();
    const end = await run.exited;
    expect(end.signal).toBeNull();
    expect(end.code).toBe(129);
    const saved = readdirSync(join(d, 'runs/t/checkpoints')).filter((n) => /^step-\d+$/.test(n));
    expect(saved).toHaveLength(1);
    expect(existsSync(join(d, 'runs/t/checkpoints', saved[0]!, 'state.json'))).toBe(true);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
    const r = await runCli(d, ['--config', p, '--resume', '--stop-after', String(Number(saved[0]!.slice(5)) + 1)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`continuing after ${saved[0]!.replace('-', ' ')}`);
  });
});

describe('SIGHUP during data loading', () => {
  it('stops before training with nothing written (exit 129)', async () => {
    const d = scratch();
    // Over the progress threshold (16 MiB), so the load announces itself: the signal comes mid-load.
    const fd = openSync(join(d, 'big.csv'), 'w');
    writeSync(fd, 'value\n');
    const rows = Array.from({ length: 50_000 }, (_, i) => `${Math.sin(i / 10).toFixed(6)}`).join('\n') + '\n';
    for (let i = 0; i < 40; i++) writeSync(fd, rows);
    closeSync(fd);
    const p = writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'big.csv', column: 'value' }, contextLength: 24, stride: 512 } }));
    const run = startCli(d, ['--config', p]);
    await run.waitFor(/\[data\] reading big\.csv \([\d.]+ MB\)/);
    run.child.kill('SIGHUP');
    const end = await run.exited;
    expect(end.code, end.stdout + end.stderr).toBe(129);
    expect(end.stderr).toMatch(/\[signal\] SIGHUP \(the terminal closed; .*\): stopping before training starts/);
    expect(end.stdout).toContain('stopped: SIGHUP before training started: nothing was written to runs/t');
    expect(end.stdout + end.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs'))).toBe(false);
  });
});
