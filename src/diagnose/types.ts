/**
 * The diagnosis's vocabulary: the records it reads (a lenient view of metrics.jsonl), what it needs
 * from header.json, and what it says (Finding). Pure types: no Node, no GPU (docs/FINDINGS.md).
 */

// ---------------------------------------------------------------------------------------------
// What a finding says

export type Severity = 'error' | 'warning';

/** Stable kinds; a finding's id is its kind, plus `@layer<N>` for per-layer kinds. */
export type FindingKind =
  | 'bad-start'
  | 'clip-limited'
  | 'router-saturated'
  | 'routing-collapse'
  | 'dead-experts'
  | 'pooled-aux-hides-imbalance'
  | 'aux-dominates'
  | 'aux-fights-main'
  | 'non-finite'
  | 'nan-logged-as-zero'
  | 'loss-scale-collapse'
  | 'overflow-skips'
  | 'loss-spikes'
  | 'divergence'
  | 'no-progress'
  | 'overfitting'
  | 'data-constant-windows'
  | 'data-extreme-values'
  | 'data-too-few-windows';

/** One measured fact behind a finding: a sentence with its numbers, and the numbers themselves. */
export interface Evidence {
  /** The step the fact is about (null: the run as a whole, or the data). */
  step: number | null;
  text: string;
  values: Record<string, number | string | boolean | null | readonly (number | null)[]>;
}

/** The fix as config changes: each `sets` entry is `key=value` for `--set` (a key of the config schema). */
export interface Fix {
  sets: string[];
  /** What the change does, and anything a --set cannot say. */
  note: string;
}

export interface Finding {
  /** Stable: `kind` or `kind@layer<N>`. */
  id: string;
  kind: FindingKind;
  severity: Severity;
  /** Short, without numbers that change step to step (a changed title is reported as a change). */
  title: string;
  layer: number | null;
  evidence: Evidence[];
  /** The likely cause, in words. */
  cause: string;
  fix: Fix;
  /** `npm run experiment -- <name>` reproduces the failure and its fix (null: no experiment). */
  experiment: string | null;
  /** First step at which the detector fired (0: before training, e.g. the data). */
  firstStep: number;
  /** Last step at which the condition held. */
  lastStep: number;
  /** ongoing: the condition holds at the latest step seen; resolved: it held, and no longer does. */
  status: 'ongoing' | 'resolved';
}

/** What `Diagnoser.push` returns: a finding seen for the first time, or one whose severity, status or title changed. */
export interface FindingChange {
  change: 'new' | 'changed' | 'resolved';
  finding: Finding;
  /** The finding as it was last reported (changed / resolved only). */
  previous?: Pick<Finding, 'severity' | 'status' | 'title'>;
}

/** A handled event that is not a defect (e.g. one non-finite step the guards skipped): the summary lists it, no finding. */
export interface Note {
  step: number;
  text: string;
}

// ---------------------------------------------------------------------------------------------
// What the run writes into header.json for the diagnosis (besides config, parameters, plan, ...)

/**
 * The loss of a model that knows nothing, to judge the initial loss against (header.json `baseline`).
 * - `uniform-classes`: cross-entropy of the uniform guess, ln C (classifyBaseline).
 * - `predict-window-mean`: forecasting, the Huber loss of predicting 0 in the normalised space, i.e.
 *   the window's own mean, over the validation windows (forecastBaseline).
 */
export interface Baseline {
  kind: 'uniform-classes' | 'predict-window-mean';
  /** In the units of the main loss (lossMain): cross-entropy in nats, or Huber. */
  loss: number;
  /** How it was computed, in words (the console and the JSON quote it). */
  how: string;
}

/**
 * Statistics of the training windows as the model sees them (header.json `data`): the data
 * report's counts plus `windowStats` from summarizeWindows(). Every field is optional: a detector
 * only judges what is there.
 */
export interface DataStats {
  source?: string;
  trainWindows?: number;
  validWindows?: number;
  contextLength?: number;
  stride?: number;
  /** Series kept / series flagged constant by the cleaner (DataReport). */
  seriesOut?: number;
  constantSeries?: number;
  nonFinitePoints?: number;
  repairedPoints?: number;
  normalize?: 'window' | 'series' | 'none';
  windowStats?: WindowStats;
}

/** summarizeWindows() output: over the training windows (or a sample of them). */
export interface WindowStats {
  /** Windows summarised (all, or the sample). */
  windows: number;
  /** Windows whose inputs are all equal (normalised to zeros under 'window' normalisation). */
  constantWindows: number;
  /** Largest |value| the model sees, inputs and next-step labels (normalised space). */
  maxAbsInput: number;
  maxAbsLabel: number;
  /** 99th percentile over windows of the window's largest |label| (normalised space). */
  p99AbsLabel: number;
  /** Windows with some |normalised label| above EXTREME_VALUE (data.ts). */
  extremeWindows: number;
  /** The normalisation scale (x' = (x - mean) / scale) over windows: min, median, max. */
  scale: { min: number; median: number; max: number };
}

// ---------------------------------------------------------------------------------------------
// The records the detectors read: metrics.jsonl lines, with non-finite numbers as NaN / ±Infinity.
// Routing of a skipped or non-finite step is not valid and may be null / NaN (the run is changing
// to write it so); the detectors ignore it.

export interface BadTensor {
  name: string;
  layer: number;
  nonFinite: number;
  min: number;
  max: number;
  mean: number;
}

export interface LayerRouting {
  layer: number;
  /** Fraction of the top-k picks per expert (sums to 1; balanced 1/E); null when not valid. */
  load: number[] | null;
  /** Mean router entropy in nats (uniform ln E); NaN when not valid. */
  entropy: number;
  /** Largest expert share; NaN when not valid. */
  maxShare: number;
  /** The layer's Switch balancing loss (balanced 1), when logged. */
  switchLoss?: number;
  dropped?: number;
}

/** A step's losses and optimizer numbers, as the trainer measures them (StepMetrics) and a train line records them. */
export interface StepScalars {
  loss: number;
  lossMain: number;
  aux: number;
  z: number;
  lr: number;
  auxFactor: number;
  gradNorm: number;
  gradNormPostClip: number;
  clipCoef: number;
  /** 1 - clipCoef: the fraction of the gradient clipping removed. */
  clippedFraction: number;
  skipped: boolean;
}

export interface TrainRecord extends StepScalars {
  kind: 'train';
  step: number;
  nonFinite: BadTensor[];
  /** Empty when the step logged none (or null in the file). */
  routing: LayerRouting[];
  lossScale?: number;
  overflow?: boolean;
}

export interface ValidRecord {
  kind: 'valid';
  step: number;
  loss: number;
  lossMain: number;
  accuracy?: number;
  windows?: number;
}

export type DiagRecord = TrainRecord | ValidRecord;

/** The subset of header.json the diagnosis reads (src/ui/observer.ts RunHeader, plus baseline and data). */
export interface RunHeaderInput {
  /** The effective training config (TrainConfig as train.js wrote it). */
  config?: unknown;
  startStep?: number;
  baseline?: Baseline | null;
  data?: DataStats | null;
}
