/**
 * When a run has diverged, judged on the validation loss: it is not finite (NaN weights: guards
 * off, or a NaN born where no guard looks), or it exceeds `stability.divergenceFactor` times the
 * loss before training (the untrained model's), i.e. training made the model much worse than it
 * started. The reference is floored at DIVERGENCE_FLOOR so a loss that starts near zero (e.g.
 * constant series) does not turn noise into a divergence. The training loss alone is not used:
 * it is noisy, and with guards on a non-finite step is skipped (and stopped after K) instead.
 */
import type { TrainConfig } from '../config.ts';
import { fmt } from './metrics.ts';

export const DIVERGENCE_FLOOR = 0.01;

/** Why the run counts as diverged at this validation ("not finite", "more than 2x ..."), or null. No validation windows: nothing to judge. */
export function divergence(loss: number, windows: number, reference: number | null, factor: number): string | null {
  if (windows === 0) return null;
  if (!Number.isFinite(loss)) return 'not finite';
  if (factor > 0 && reference !== null && Number.isFinite(reference) && loss > factor * Math.max(reference, DIVERGENCE_FLOOR))
    return `more than ${factor}x the loss before training, ${fmt(reference)} (stability.divergenceFactor ${factor})`;
  return null;
}

/** What to change, for the "diverged:" message. */
export function divergenceFix(cfg: TrainConfig, nonFinite: boolean): string {
  const fixes: string[] = [];
  if (nonFinite && !cfg.stability.guards) fixes.push('turn stability.guards back on (it skips non-finite steps and names the layer)');
  fixes.push(`lower optim.lr (now ${cfg.optim.lr}, e.g. --set optim.lr=${Number((cfg.optim.lr / 10).toPrecision(3))})`);
  if (cfg.optim.clipNorm === 0) fixes.push('clip gradients (optim.clipNorm is 0; 1.0 is the default)');
  if (cfg.schedule.warmupSteps === 0) fixes.push('add a warmup (schedule.warmupSteps)');
  return fixes.join(', or ');
}
