/** The last line of a run (stdout): "done: ...", "stopped: ..." or "diverged: ...", and its exit code. */
import { EXIT } from '../exit-codes.ts';
import { fmt } from './metrics.ts';
import type { RunResult } from './session.ts';

/** " (3 skipped by the guards, 5 skipped for loss-scale overflow)" or "" when nothing was skipped. */
function skippedNote(skipped: number, overflows: number): string {
  const guards = skipped - overflows;
  const parts = [guards ? `${guards} skipped by the guards` : '', overflows ? `${overflows} skipped for loss-scale overflow` : ''].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function lossNote(r: RunResult): string {
  if (!r.validAfter || r.validAfter.windows === 0) return 'no validation data';
  const before = r.validBefore && r.validBefore.windows > 0 ? r.validBefore.loss : r.reference;
  return `validation loss ${before !== null ? `${fmt(before)} -> ` : ''}${fmt(r.validAfter.loss)}`;
}

export function formatOutcome(r: RunResult, show: (p: string) => string, total: number, stopAfter?: number): { line: string; code: number } {
  const metrics = `metrics in ${show(r.metricsPath)}`;
  switch (r.outcome) {
    case 'done':
      return { line: `done: ${r.steps} steps${skippedNote(r.skippedSteps, r.overflowSteps)}; ${lossNote(r)}; ${metrics}`, code: EXIT.done };
    case 'stopped':
      return {
        line: `stopped: ${r.steps} steps of ${total} (--stop-after ${stopAfter}; continue with --resume)${skippedNote(r.skippedSteps, r.overflowSteps)}; ${lossNote(r)}; ${metrics}`,
        code: EXIT.done,
      };
    case 'finished':
      return {
        line: `done: the run had already finished (step ${r.steps}, schedule.steps ${total}); nothing was trained. To train longer, raise schedule.steps (e.g. --set schedule.steps=${total * 2}) and --resume`,
        code: EXIT.done,
      };
    case 'diverged': {
      const latest = r.latestGood ? `latest stays ${show(r.latestGood)}` : 'no checkpoint is marked latest';
      return {
        line: `diverged: ${r.steps} steps${skippedNote(r.skippedSteps, r.overflowSteps)}; ${lossNote(r)}: ${r.diverged}. The final state is saved as ${r.checkpoint ? show(r.checkpoint) : '(none)'}, not marked latest; ${latest}; ${metrics}`,
        code: EXIT.diverged,
      };
    }
  }
}
