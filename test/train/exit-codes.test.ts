/**
 * One exit-code table for --plan and training (issue 14, item 9; src/train/exit-codes.ts):
 * a plan that does not fit is bad input (2) both ways, and SIGTERM is handled like SIGINT
 * (finish the step, save, exit 143) so Slurm / Kubernetes / systemd stops lose nothing.
 */
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, scratch, tinyConfig, writeConfig, startLongRun, tinyRun } from './cli-helpers.ts';

describe('exit codes', () => {
  it('--plan: 0 when it fits, 2 when it does not, as training the same config', async () => {
    const { d, p } = tinyRun();
    const fits = await runCli(d, ['--config', p, '--plan']);
    expect(fits.status).toBe(0);
    expect(fits.stdout).toMatch(/Verdict: FITS/);
    const plan = await runCli(d, ['--config', p, '--plan', '--budget-gb', '0.001']);
    expect(plan.status).toBe(2);
    expect(plan.stdout).toMatch(/Verdict: DOES NOT FIT/);
    const train = await runCli(d, ['--config', p, '--budget-gb', '0.001']);
    expect(train.status).toBe(2);
    expect(existsSync(join(d, 'runs'))).toBe(false); // --plan and a refused plan write nothing
  });

  it('--plan with run flags is refused', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--plan', '--resume']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--plan only prints the memory plan: leave out --resume/);
  });

  it('SIGTERM finishes the step, saves a checkpoint, exits 143, and --resume continues', async () => {
    const { d, p, run } = await startLongRun(0);
    run.child.kill('SIGTERM');
    const { code, stdout, stderr } = await run.exited;
    expect(code, stderr).toBe(143);
    expect(stderr).toMatch(/\[signal\] SIGTERM: finishing this step, saving a checkpoint, then exiting/);
    const m = stdout.match(/stopped: SIGTERM at step (\d+): checkpoint saved at (runs\/t\/checkpoints\/step-\d+) \(continue with --resume\)/);
    expect(m, stdout + stderr).not.toBeNull();
    expect(existsSync(join(d, m![2]!, 'state.json'))).toBe(true);
    const r = await runCli(d, ['--config', p, '--resume', '--stop-after', String(Number(m![1]) + 1)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`continuing after step ${m![1]}`);
  });
});
