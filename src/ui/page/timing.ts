/**
 * Seconds per step and the time left, from the records' `ms` (each optimizer step's own time) and
 * the config's schedule.steps. Pure: tested in Node (test/ui/page-model.test.ts).
 */
import type { RunData } from './store.ts';

/** Steps the rate is taken over: recent enough to follow a change of speed, enough to smooth one slow step. */
export const RATE_WINDOW = 20;

export interface Timing {
  /** Median seconds per step over the last RATE_WINDOW steps that logged a time; null when none did. */
  secondsPerStep: number | null;
  /** schedule.steps from the header's config; null when unknown. */
  totalSteps: number | null;
  lastStep: number | null;
  /** Steps still to go, times secondsPerStep; null when either is unknown. Validation and saves are not counted. */
  etaSeconds: number | null;
}

export function totalStepsOf(d: Pick<RunData, 'header'>): number | null {
  const steps = (d.header?.config?.schedule as { steps?: unknown } | undefined)?.steps;
  return typeof steps === 'number' && Number.isFinite(steps) ? steps : null;
}

export function timing(d: Pick<RunData, 'header' | 'train'>): Timing {
  const { ms, step } = d.train;
  const recent: number[] = [];
  for (let i = ms.length - 1; i >= 0 && recent.length < RATE_WINDOW; i--) {
    const v = ms[i];
    if (v !== null && v !== undefined && Number.isFinite(v) && v > 0) recent.push(v);
  }
  recent.sort((a, b) => a - b);
  const n = recent.length;
  const median = n === 0 ? null : n % 2 ? recent[n >> 1]! : (recent[n / 2 - 1]! + recent[n / 2]!) / 2;
  const secondsPerStep = median === null ? null : median / 1000;
  const totalSteps = totalStepsOf(d);
  const lastStep = step.length ? step[step.length - 1]! : null;
  const etaSeconds = secondsPerStep !== null && totalSteps !== null ? Math.max(0, totalSteps - (lastStep ?? 0)) * secondsPerStep : null;
  return { secondsPerStep, totalSteps, lastStep, etaSeconds };
}
