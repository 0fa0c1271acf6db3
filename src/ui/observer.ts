/**
 * What a training run tells the live dashboard, in memory (src/train/run/metrics.ts MetricsLog calls
 * it; src/ui/live.ts implements it). Declared here, below src/train, so the dashboard needs
 * nothing from the training layer and train can start it.
 */
import type { AdapterSummary } from '../kernels/caps.ts';

/** What a run says about itself once, before its first step: written to header.json beside the metrics. */
export interface RunHeader {
  config: unknown;
  parameters: number;
  /** plan.txt's text. */
  plan: string;
  adapter?: AdapterSummary;
  /** The optimizer step the run starts after (0 for a fresh run). */
  startStep: number;
  startedAt: string;
  /** The no-information loss the diagnosis compares the first loss with (src/diagnose baseline.ts). */
  baseline?: unknown;
  /** Data statistics for the diagnosis (src/diagnose data-stats.ts): the data report and window statistics. */
  data?: unknown;
}

/**
 * Sees what the log sees: `history` once with the records kept from an earlier run segment
 * (a resume; none for a fresh run), the header, then every record as it is written.
 */
export interface MetricsObserver {
  history(records: Record<string, unknown>[]): void;
  header(header: RunHeader): void;
  record(record: Record<string, unknown>): void;
}
