/**
 * What the phases of one training run share (run.ts: prepare -> commit -> loop -> finish): the
 * options and the result of runTraining, the error of a run that stopped, the state carried from
 * phase to phase, and the run's [valid] line.
 */
import type { DawnRuntime } from '../../kernels/runtime.ts';
import type { TrainConfig } from '../config.ts';
import type { LoadedData } from '../data/index.ts';
import { fmt, type MetricsLog } from './metrics.ts';
import type { MemoryPlan } from '../plan/planner.ts';
import type { TargetProfile } from '../plan/targets.ts';
import type { ValidMetrics } from '../step/evaluate.ts';
import type { RunModel } from '../step/model-setup.ts';
import type { StepMetrics, Trainer } from '../step/trainer.ts';
import type { ResumePick } from './resume.ts';
import type { RunPaths } from './run-dir.ts';
import type { StopRequests } from './signals.ts';
import type { MetricsObserver } from '../../ui/observer.ts';
import type { RunDiagnosis } from './diagnosis.ts';

/** A run that stopped (K bad steps, a signal, an I/O failure): the message says where its state is. */
export class RunStopped extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'RunStopped';
  }
}

export interface RunOptions {
  resume: boolean;
  /** A step number or checkpoint folder to resume from (implies resume). */
  resumeFrom?: string;
  /** A resume goes on although the config changed in these keys or sections (true: any); docs/CONFIG.md. */
  allowConfigChange?: true | readonly string[];
  /** A fresh run into a folder holding a run moves that run aside instead of being refused. */
  overwrite?: boolean;
  /** The device the run is planned for before anything is allocated (default profile: rtx-3090). */
  target: TargetProfile;
  /** Memory budget in bytes for the plan check (default: the target's memory). */
  budgetBytes?: number;
  /** Host memory for an offloaded optimizer (default: this machine's RAM). */
  hostBytes?: number;
  /** Relative paths (logging.dir, data) are resolved against it. */
  cwd: string;
  /** Save a checkpoint and stop after this optimizer step (train in chunks; resume later). */
  stopAfter?: number;
  /** Time every kernel of the training steps; print a table and write <logging.dir>/profile.json. */
  profile?: boolean;
  /** Sees every metrics record in memory as it is written (the live dashboard, train.js --ui). */
  observer?: MetricsObserver;
}

export interface RunResult {
  /**
   * done: all steps; stopped: --stop-after; diverged: see divergence.ts (exit 3); finished: a
   * resume of a run that had already done all its steps (nothing trained, nothing written).
   */
  outcome: 'done' | 'stopped' | 'diverged' | 'finished';
  steps: number;
  validBefore: ValidMetrics | null;
  validAfter: ValidMetrics | null;
  last: StepMetrics | null;
  skippedSteps: number;
  /** Of the skipped steps, those skipped for a loss-scale overflow (f16 activations). */
  overflowSteps: number;
  /** The loss before training (this run's, or the resumed run's), for the final message. */
  reference: number | null;
  /** Why the run counts as diverged (outcome 'diverged'). */
  diverged?: string;
  /** Where the final state was saved. */
  checkpoint?: string;
  /** The checkpoint `latest` names at the end (null: none). */
  latestGood?: string | null;
  /** The metrics log (absolute). */
  metricsPath: string;
}

/** One runTraining call, from the lock on: what every phase reads, and the state they hand on. */
export interface Session {
  readonly cfg: TrainConfig;
  readonly opts: RunOptions;
  readonly paths: RunPaths;
  /** A path as the run's messages show it (relative to the cwd when inside it). */
  readonly show: (p: string) => string;
  /** The plan for the target, checked to fit before the lock was taken. */
  readonly plan: MemoryPlan;
  readonly stops: StopRequests;
  /** Set by commit: from then on the run writes its folder (an I/O error is a stopped run, and the folder stays). */
  committed: boolean;
  /** The last checkpoint marked latest: where an I/O failure says the run can go on from. */
  lastGood: string | null;
  /** The loss before training (this run's first validation, or the resumed run's): the divergence yardstick. */
  reference: number | null;
  /** Set by a validation that judged the run diverged; cleared when a later one recovers. */
  diverged: string | null;
}

/** What prepare set up, every check passed: the device, data, model, optimizer and where training starts. */
export interface Prepared {
  readonly rt: DawnRuntime;
  readonly data: LoadedData;
  readonly built: RunModel;
  readonly trainer: Trainer;
  /** The plan on this device, with its caps (the [model] line's peak). */
  readonly here: MemoryPlan;
  /** Run files of a previous run that a fresh run moves aside (--overwrite), relative to the run folder. */
  readonly overwrite: readonly string[];
  /** The checkpoint a resume continues from (null: a fresh run). */
  readonly pick: ResumePick | null;
  /** The last step already trained (0: a fresh run). */
  readonly start: number;
  /** A validation pass over data.valid with the current loss options. */
  readonly validate: () => Promise<ValidMetrics>;
}

/** What commit adds: the metrics log, and the first validation of a fresh run. */
export interface Committed extends Prepared {
  readonly metrics: MetricsLog;
  readonly validBefore: ValidMetrics | null;
  /** The run's findings as the metrics are written (diagnosis.ts). */
  readonly diagnosis: RunDiagnosis;
}

export function validLine(tag: string, v: ValidMetrics): string {
  return `${tag}: loss ${fmt(v.loss)} (${v.accuracy !== undefined ? `cross-entropy ${fmt(v.lossMain)} accuracy ${fmt(v.accuracy, 3)}` : `huber ${fmt(v.lossMain)}`}) ${v.horizons.map((h) => `mse@${h.horizon} ${fmt(h.mse)} mae@${h.horizon} ${fmt(h.mae)}`).join(' ')} over ${v.windows} windows`;
}
