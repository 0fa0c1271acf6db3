/**
 * SIGINT and SIGTERM, handled alike (SIGTERM is what Slurm, Kubernetes and systemd send before a
 * SIGKILL): the first one asks the run to stop at the next safe point (after the step, with a
 * checkpoint; or before training starts, with nothing written); a second one quits at once with
 * the same exit code, after the `onForce` clean-up (the run folder's lock).
 */
import { EXIT } from '../exit-codes.ts';

export type StopSignal = 'SIGINT' | 'SIGTERM';

export const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: EXIT.sigint, SIGTERM: EXIT.sigterm };

export class StopRequests {
  private got: StopSignal | null = null;
  private readonly controller = new AbortController();
  private readonly handlers: [StopSignal, () => void][];
  /** What the first signal's message says will happen; loop.ts changes it once training starts. */
  phase: 'setup' | 'training' = 'setup';
  log: (line: string) => void = (l) => console.error(l);

  constructor(private readonly onForce: () => void) {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((s) => [s, () => this.on(s)]);
    for (const [s, h] of this.handlers) process.on(s, h);
  }

  private on(s: StopSignal): void {
    if (this.got) {
      this.onForce();
      process.exit(SIGNAL_EXIT[this.got]);
    }
    this.got = s;
    this.controller.abort(s);
    this.log(
      this.phase === 'setup'
        ? `\n[signal] ${s}: stopping before training starts (nothing has been written to the run folder)`
        : `\n[signal] ${s}: finishing this step, saving a checkpoint, then exiting (send ${s} again to quit now, without saving)`,
    );
  }

  /** The first signal received, or null. */
  get received(): StopSignal | null {
    return this.got;
  }

  /** Aborted by the first signal: long set-up work (data loading) stops early. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    for (const [s, h] of this.handlers) process.off(s, h);
  }
}
