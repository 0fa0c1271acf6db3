/**
 * The end of a run says what happened (issue 14, item 8), through the CLI: a run whose validation
 * loss is not finite or exploded (more than stability.divergenceFactor x the loss before training)
 * ends "diverged: ..." with exit 3, and its state is saved as diverged-step-N, never as latest, so
 * --resume continues from the last good checkpoint and says what it skipped.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, scratch, tinyConfig, writeConfig } from './cli-helpers.ts';

const latest = (d: string) => readFileSync(join(d, 'runs/t/checkpoints/latest'), 'utf8').trim();

describe('diverged runs', () => {
  it('guards off with an injected NaN: "diverged", exit 3, NaN state kept as diverged-step-N, latest on the last good one', async () => {
    const d = scratch();
    // NaN at step 4; validation at 4 and 8 sees it; checkpoints at 3 (good), 6 and 9 (after it).
    const cfg = tinyConfig({
      schedule: { steps: 9, warmupSteps: 2, microBatch: 4 },
      stability: { guards: false, injectNan: { step: 4, layer: 1, site: 'router_logits' } },
      logging: { dir: 'runs/t', validEvery: 4, validBatches: 2, progress: 'plain' },
      checkpoint: { every: 3, keep: 2 },
    });
    const p = writeConfig(d, cfg);
    const r = await runCli(d, ['--config', p]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /\[valid\] step 4: diverged: the validation loss NaN is not finite\. Checkpoints are now saved as diverged-step-N, not marked latest \(latest stays runs\/t\/checkpoints\/step-3\)/,
    );
    expect(r.stdout).toMatch(
      /^diverged: 9 steps; validation loss [\d.]+ -> NaN: not finite\. Fix: turn stability\.guards back on .*, or lower optim\.lr \(now 0\.003/,
    );
    expect(r.stdout).toMatch(/The final state is saved as runs\/t\/checkpoints\/diverged-step-9, not marked latest; latest stays runs\/t\/checkpoints\/step-3/);
    expect(r.stdout).not.toMatch(/^done/);
    expect(readdirSync(join(d, 'runs/t/checkpoints')).sort()).toEqual(['diverged-step-6', 'diverged-step-9', 'latest', 'step-3']);
    expect(latest(d)).toBe('step-3');

    // --resume skips the diverged states, naming them, and continues from the last good one.
    const again = await runCli(d, ['--config', p, '--resume', '--set', 'stability.guards=true']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(
      /\[resume\] skipped diverged-step-6: saved after the validation loss diverged, so it is not marked latest \(to continue from it anyway: --resume-from runs\/t\/checkpoints\/diverged-step-6\)/,
    );
    expect(again.stderr).toMatch(/continuing after step 3/);
    expect(again.stderr).toMatch(/\[guard\] step 4 skipped/);
    expect(again.stdout).toMatch(/^done: 9 steps \(1 skipped by the guards\)/);
    expect(latest(d)).toBe('step-9');
    // The diverged states were moved aside, not deleted.
    const aside = again.stderr.match(/checkpoints after step 3 moved to (\S+) \(not deleted\)/)![1]!;
    expect(readdirSync(join(d, aside, 'checkpoints')).sort()).toEqual(['diverged-step-6', 'diverged-step-9']);
  });

  it('lr 10: the validation loss explodes past 2x the loss before training: "diverged", exit 3, with the knob to turn', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'optim.lr=10']);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(
      /^diverged: 6 steps; validation loss ([\d.]+) -> ([\d.]+): more than 2x the loss before training, \1 \(stability\.divergenceFactor 2\)\. Fix: lower optim\.lr \(now 10, e\.g\. --set optim\.lr=1\)/,
    );
    const [, before, after] = r.stdout.match(/validation loss ([\d.]+) -> ([\d.]+)/)!;
    expect(Number(after)).toBeGreaterThan(2 * Number(before));
    expect(existsSync(join(d, 'runs/t/checkpoints/diverged-step-6/model.safetensors'))).toBe(true);
    expect(latest(d)).toBe('step-3');
  });

  it('stability.divergenceFactor 0 turns the ratio test off (non-finite still counts)', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'optim.lr=10', '--set', 'stability.divergenceFactor=0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^done: 6 steps/);
  });
});
