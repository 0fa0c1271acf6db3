/**
 * The planner's measurement: record the training loop's steps on a meta runtime with a target's
 * caps and keep the pool's event log of the steady-state window (src/train/plan/planner.ts reads it).
 */
import { MetaRuntime, type Allocation, type LimitViolation, type PoolEvent } from '../../kernels/meta-runtime.ts';
import type { TimeMoeModel } from '../../model/time-moe.ts';
import type { StepOptimizer } from '../../optim/step-optimizer.ts';
import { buildRunModel } from '../step/model-setup.ts';
import type { TrainConfig } from '../config.ts';
import { Trainer, type PendingStep } from '../step/trainer.ts';
import type { Batch } from '../step/batch.ts';
import type { TargetProfile } from './targets.ts';
import { requestedProblems, type MatmulProblem } from '../../kernels/matmul-config.ts';

// Not targets.ts's GIB: that module reads this host's RAM (node:os), and the browser page plans too.
const GIB = 1024 ** 3;

/** Kept free for the CUDA/Vulkan context, Dawn's own allocations and fragmentation. */
export const DEFAULT_RESERVE_BYTES = 0.5 * GIB;

export interface PlanBuffer {
  label: string;
  bytes: number;
  /** Region path it was made in, e.g. 'forward / layer 3'. */
  region: string;
}

/** A batch of the configured shape: zeros (the meta runtime never reads values). */
function shapeBatch(cfg: TrainConfig): Batch {
  const B = cfg.schedule.microBatch;
  const T = cfg.data.contextLength;
  const N = B * T;
  return {
    B,
    T,
    inputs: new Float32Array(N),
    labels: new Float32Array(N),
    mask: new Float32Array(N).fill(1),
    ...(cfg.model.task === 'classify' ? { classes: new Int32Array(B) } : {}),
  };
}

export interface Simulation {
  meta: MetaRuntime;
  model: TimeMoeModel;
  optimizer: StepOptimizer;
  /** Live allocations when the measured window starts, and the window's pool events. */
  start: Allocation[];
  events: PoolEvent[];
  peakBytes: number;
  /** Allocation ids of the parameter gradients of the measured step (read when its update starts), and their bytes. */
  gradients: Set<number>;
  gradientBytes: number;
  /** Live bytes when the measured step's first backward starts. */
  forwardEnd: number;
  dispatches: number;
  submits: number;
  /** FLOPs per optimizer step reported by the dispatches (matmuls and attention), and those of its backward. */
  flops: number;
  backwardFlops: number;
  readbacks: string[];
}

/**
 * Record the training loop's steps on a meta runtime: window 1 (steps 1..N, N = metricsEvery)
 * reaches steady state, window 2 (steps N+1..2N) is measured. Each window records its steps back
 * to back and finishes them afterwards, as the loop does between metrics readbacks.
 */
export function simulate(cfg: TrainConfig, target: TargetProfile): Simulation {
  const meta = new MetaRuntime(target.caps);
  const { model, optimizer } = buildRunModel(meta, cfg);
  const trainer = new Trainer(meta, model, optimizer, cfg);
  const N = cfg.logging.metricsEvery;
  const batch = shapeBatch(cfg);
  const micro = () => Array.from({ length: cfg.schedule.accumulation }, () => batch);
  const window = (first: number) => {
    const steps: PendingStep[] = [];
    for (let s = first; s < first + N; s++) steps.push(trainer.record(s, micro(), { keepGrads: N === 1 }));
    for (const ps of steps) trainer.release(ps);
    return steps.length;
  };
  window(1);
  const before = meta.counters;
  const flops0 = meta.flops;
  const backward0 = meta.flopsByRegion.get('backward') ?? 0;
  const readbacks0 = meta.readbacks.length;
  const start = meta.liveAllocations();
  meta.logging = true;
  const gradients = new Set<number>();
  let gradientBytes = 0;
  let forwardEnd = -1;
  meta.onRegion = (path, enter) => {
    if (!enter || path.length !== 1) return;
    if (path[0] === 'backward' && forwardEnd < 0) forwardEnd = meta.memory().liveBytes;
    if (path[0] !== 'update' || gradients.size) return;
    for (const p of model.params)
      if (p.grad) {
        gradients.add(meta.allocationOf(p.grad).id);
        gradientBytes += p.grad.byteLength;
      }
  };
  const steps = window(N + 1);
  meta.onRegion = null;
  meta.logging = false;
  const after = meta.counters;
  return {
    meta,
    model,
    optimizer,
    start,
    events: meta.events,
    peakBytes: meta.memory().peakLiveBytes,
    gradients,
    gradientBytes,
    forwardEnd,
    dispatches: (after.dispatches - before.dispatches) / steps,
    submits: (after.submits - before.submits) / steps,
    flops: (meta.flops - flops0) / steps,
    backwardFlops: ((meta.flopsByRegion.get('backward') ?? 0) - backward0) / steps,
    readbacks: meta.readbacks.slice(readbacks0),
  };
}

/** Peak bytes and limit violations only: what the suggestion search needs. */
export function planPeak(cfg: TrainConfig, target: TargetProfile): { peakBytes: number; violations: LimitViolation[]; largest: PlanBuffer } {
  const sim = simulate(cfg, target);
  return { peakBytes: sim.peakBytes, violations: sim.meta.violations, largest: largestOf(sim) };
}

export function largestOf(sim: Simulation): PlanBuffer {
  const l = sim.meta.largest;
  const a = [...sim.start, ...sim.events.map((e) => e.alloc)].find((x) => x.label === l.label && x.bytes === l.bytes);
  return a ? planBuffer(a) : { label: l.label, bytes: l.bytes, region: '' };
}

export function planBuffer(a: Allocation): PlanBuffer {
  return { label: a.label, bytes: a.bytes, region: a.region.join(' / ') || 'setup' };
}

/** The target's memory (or the budget given) less the reserve. */
export function usableBytes(target: TargetProfile, opts: { budgetBytes?: number; reserveBytes?: number }): number {
  return (opts.budgetBytes ?? target.memoryBytes) - (opts.reserveBytes ?? DEFAULT_RESERVE_BYTES);
}

export const fmtGiB = (b: number): string => `${(b / GIB).toFixed(2)} GiB`;

/** The matmul problems (one per shape class) a training step asks for on `target`: what the autotune times. */
export function stepMatmuls(cfg: TrainConfig, target: TargetProfile): MatmulProblem[] {
  return requestedProblems(simulate(cfg, target).meta.caps);
}
