/**
 * The last phase of a run: the final validation, the divergence verdict it gives (the last line
 * tells it, no separate [valid] line), the final checkpoint (named by that verdict) and the result.
 */
import { divergence, divergenceFix } from './divergence.ts';
import type { LoopTally } from './loop.ts';
import { saveRun } from './save.ts';
import { validLine, type Committed, type RunResult, type Session } from './session.ts';

export async function finish(s: Session, c: Committed, tally: LoopTally): Promise<RunResult> {
  const { cfg, paths } = s;
  const { trainer, built, metrics, validBefore, validate } = c;
  const total = cfg.schedule.steps;
  const validAfter = await validate();
  metrics.write({ kind: 'valid', step: total, ...validAfter });
  console.error(validLine('[valid] after training', validAfter));
  // The final verdict is the last line's to tell; no separate [valid] line for it.
  s.diverged = divergence(validAfter.loss, validAfter.windows, s.reference, cfg.stability.divergenceFactor);
  const checkpoint = await saveRun(s, c, total);
  trainer.dispose();
  built.dispose();
  const end = {
    steps: total,
    validBefore,
    validAfter,
    last: tally.last,
    skippedSteps: tally.skippedSteps,
    overflowSteps: tally.overflowSteps,
    reference: s.reference,
    checkpoint,
    latestGood: s.lastGood,
    metricsPath: paths.metrics,
  };
  return s.diverged
    ? { outcome: 'diverged', diverged: `${s.diverged}. Fix: ${divergenceFix(cfg, !Number.isFinite(validAfter.loss))}`, ...end }
    : { outcome: 'done', ...end };
}
