/**
 * The exit codes of train.js, one table for `--plan` and training alike (docs/RELIABILITY.md "Exit codes").
 * Scripts and schedulers branch on them, so each outcome has exactly one code.
 */
export const EXIT = {
  /** The run finished (or stopped where --stop-after asked), or the plan fits. */
  done: 0,
  /** The run was stopped: K consecutive non-finite steps, an I/O failure (disk full), a GPU failure (the device lost). */
  stopped: 1,
  /** Bad input: config, data, checkpoint, flags, run folder, environment, or a plan that does not fit. Nothing saved was touched. */
  badInput: 2,
  /** The run diverged: the validation loss is non-finite or exploded (see run/divergence.ts). */
  diverged: 3,
  /** SIGHUP (the terminal closed, an ssh session dropped): handled like SIGTERM. 128 + 1. */
  sighup: 129,
  /** SIGINT (Ctrl-C): the step was finished and a checkpoint saved first. 128 + 2, the shell convention. */
  sigint: 130,
  /** SIGQUIT (Ctrl-\): handled like SIGTERM (no core dump). 128 + 3. */
  sigquit: 131,
  /** SIGTERM (Slurm, Kubernetes, systemd): handled like SIGINT. 128 + 15. */
  sigterm: 143,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
