/**
 * The settings of a run the detectors need, read leniently from header.json's `config` (the
 * effective TrainConfig): a missing key takes the schema's default (src/train/config.ts,
 * src/model/config.ts), so headers of older or partial configs still diagnose.
 */
import type { Baseline, DataStats, RunHeaderInput } from './types.ts';

export interface RunContext {
  task: 'forecast' | 'classify';
  numClasses: number | null;
  hidden: number | null;
  layers: number | null;
  experts: number | null;
  topK: number | null;
  headStd: number;
  routerStd: number;
  lr: number | null;
  clipNorm: number;
  weightDecay: number;
  steps: number | null;
  warmupSteps: number;
  microBatch: number | null;
  accumulation: number;
  huberDelta: number;
  auxFactor: number;
  auxConvention: 'pooled' | 'switch';
  auxWarmupSteps: number;
  guards: boolean;
  maxConsecutiveBadSteps: number;
  divergenceFactor: number;
  activations: 'f32' | 'f16';
  minScale: number;
  initialScale: number;
  normalize: 'window' | 'series' | 'none' | null;
  startStep: number;
  baseline: Baseline | null;
  data: DataStats | null;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const bool = (v: unknown, d: boolean): boolean => (typeof v === 'boolean' ? v : d);

function isBaseline(v: unknown): v is Baseline {
  const b = obj(v);
  return (
    (b.kind === 'uniform-classes' || b.kind === 'predict-window-mean') && typeof b.loss === 'number' && Number.isFinite(b.loss) && typeof b.how === 'string'
  );
}

export function runContext(header: RunHeaderInput): RunContext {
  const c = obj(header.config);
  const model = obj(c.model);
  const init = obj(model.init);
  const optim = obj(c.optim);
  const schedule = obj(c.schedule);
  const loss = obj(c.loss);
  const stability = obj(c.stability);
  const precision = obj(c.precision);
  const data = obj(c.data);
  const task = model.task === 'classify' ? 'classify' : 'forecast';
  const numClasses = numOrNull(model.numClasses);
  return {
    task,
    numClasses,
    hidden: numOrNull(model.hidden),
    layers: numOrNull(model.layers),
    experts: numOrNull(model.experts),
    topK: numOrNull(model.topK),
    headStd: num(init.headStd, 0.02),
    routerStd: num(init.routerStd, 0.006),
    lr: numOrNull(optim.lr),
    clipNorm: num(optim.clipNorm, 1),
    weightDecay: num(optim.weightDecay, 0.1),
    steps: numOrNull(schedule.steps),
    warmupSteps: num(schedule.warmupSteps, 0),
    microBatch: numOrNull(schedule.microBatch),
    accumulation: num(schedule.accumulation, 1),
    huberDelta: num(loss.huberDelta, 2),
    auxFactor: num(loss.auxFactor, 0.02),
    auxConvention: loss.auxConvention === 'switch' ? 'switch' : 'pooled',
    auxWarmupSteps: num(loss.auxWarmupSteps, 0),
    guards: bool(stability.guards, true),
    maxConsecutiveBadSteps: num(stability.maxConsecutiveBadSteps, 5),
    divergenceFactor: num(stability.divergenceFactor, 2),
    activations: precision.activations === 'f16' ? 'f16' : 'f32',
    minScale: num(precision.minScale, 1),
    initialScale: num(precision.initialScale, 65536),
    normalize: data.normalize === 'window' || data.normalize === 'series' || data.normalize === 'none' ? data.normalize : null,
    startStep: num(header.startStep, 0),
    baseline: isBaseline(header.baseline)
      ? header.baseline
      : task === 'classify' && numClasses !== null && numClasses >= 2
        ? {
            kind: 'uniform-classes',
            loss: Math.log(numClasses),
            how: `ln ${numClasses}: the cross-entropy of a uniform guess over model.numClasses = ${numClasses} (from the config)`,
          }
        : null,
    data: header.data && typeof header.data === 'object' ? header.data : null,
  };
}

/** A number for a `--set` value: short, exact enough (3 significant digits). */
export function setValue(v: number): string {
  return String(Number(v.toPrecision(3)));
}
