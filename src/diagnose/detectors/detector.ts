/** What every detector is: it observes the records in order and says what it currently finds. */
import type { RunContext } from '../context.ts';
import type { DiagRecord, Finding, Note, TrainRecord } from '../types.ts';

export interface Detector {
  observe(rec: DiagRecord): void;
  /** The current findings (each with a stable id); recomputed after every observe. */
  findings(): Finding[];
  /** Handled events that are not defects (the summary lists them). */
  notes?(): Note[];
}

/**
 * A step whose numbers describe a real update: not skipped, no overflow, no non-finite tensor,
 * finite losses. Skipped and non-finite steps log routing and losses that are not valid.
 */
export function isCleanStep(r: TrainRecord): boolean {
  return !r.skipped && r.overflow !== true && r.nonFinite.length === 0 && Number.isFinite(r.loss) && Number.isFinite(r.lossMain);
}

export function findingId(kind: string, layer: number | null): string {
  return layer === null ? kind : `${kind}@layer${layer}`;
}
