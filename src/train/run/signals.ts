/**
 * The stop signals, all handled alike (docs/RELIABILITY.md "Signals"): SIGINT (Ctrl-C), SIGTERM
 * (what Slurm, Kubernetes and systemd send before a SIGKILL), SIGHUP (the terminal closed or the
 * ssh session dropped: a run meant to outlive its terminal is started under nohup, tmux or
 * screen, which keep SIGHUP from it) and SIGQUIT (Ctrl-\; no core dump). The first one asks the
 * run to stop at the next safe point (after the step, with a checkpoint; or before training
 * starts, with nothing written); a second one quits at once with the same exit code, after the
 * `onForce` clean-up (the run folder's lock). Each exits 128 + its number (src/train/exit-codes.ts).
 */
import { EXIT } from '../exit-codes.ts';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

export const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: EXIT.sigint, SIGTERM: EXIT.sigterm, SIGHUP: EXIT.sighup, SIGQUIT: EXIT.sigquit };

/** Whether an exit code is a stop signal's (the run saved and stopped when asked to). */
export function isSignalExit(code: number): boolean {
  return Object.values(SIGNAL_EXIT).includes(code);
}

/**
 * After SIGHUP the terminal may be gone: a write to it fails (EIO on a TTY, EPIPE on a pipe), and
 * an unhandled stream error would kill the process before its checkpoint is saved. From then on
 * such write errors are ignored (the run's files say how it ended).
 */
function ignoreClosedTerminal(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EIO' && e.code !== 'EPIPE') throw e;
    });
  }
}

export class StopRequests {
  private got: StopSignal | null = null;
  private readonly controller = new AbortController();
  private readonly handlers: [StopSignal, () => void][];
  /** What the first signal's message says will happen; loop.ts changes it once training starts. */
  phase: 'setup' | 'training' = 'setup';
  log: (line: string) => void = (l) => console.error(l);

  constructor(private readonly onForce: () => void) {
    this.handlers = STOP_SIGNALS.map((s) => [s, () => this.on(s)]);
    for (const [s, h] of this.handlers) process.on(s, h);
  }

  private on(s: StopSignal): void {
    if (s === 'SIGHUP') ignoreClosedTerminal();
    if (this.got) {
      this.onForce();
      process.exit(SIGNAL_EXIT[this.got]);
    }
    this.got = s;
    this.controller.abort(s);
    const why = s === 'SIGHUP' ? ' (the terminal closed; to keep a run going after that, start it under nohup, tmux or screen)' : '';
    this.log(
      this.phase === 'setup'
        ? `\n[signal] ${s}${why}: stopping before training starts (nothing has been written to the run folder)`
        : `\n[signal] ${s}${why}: finishing this step, saving a checkpoint, then exiting (send ${s === 'SIGHUP' ? 'SIGINT' : s} again to quit now, without saving)`,
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
