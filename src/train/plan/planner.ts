/**
 * Memory planner: how many bytes a training step needs on a target device, and whether it fits.
 *
 * Nothing here models the engine: the planner builds the real model, AdamW and Trainer on the meta
 * runtime (kernels/meta-runtime.ts: the same buffer pool, no GPU, no host values) and records the
 * real training step — the same windows of `logging.metricsEvery` steps the training loop records,
 * twice, and measures the second (steady state). The planned peak is therefore the pool's peak of
 * a real run on a device with the target's caps, byte for byte (test/planner/exact.test.ts).
 *
 * What the planner adds: the categories of the bytes live at the peak (from ownership — parameters,
 * their gradients, AdamW state — and from the step's regions: inputs, forward, backward, update,
 * per decoder layer), the target's limits (a buffer over the per-binding limit does not fit
 * whatever the memory), and suggestions found by planning the changed config.
 */
import type { KernelPolicy } from '../../kernels/policy.ts';
import type { Allocation, LimitViolation } from '../../kernels/meta-runtime.ts';
import { countParameters } from '../../model/config.ts';
import type { TrainConfig } from '../config.ts';
import type { TargetProfile } from './targets.ts';
import { DEFAULT_RESERVE_BYTES, fmtGiB, largestOf, planBuffer, simulate, type PlanBuffer, type Simulation } from './simulate.ts';
import { suggest, type Suggestion } from './suggestions.ts';

/** Where a byte live at the peak belongs. */
export type Category = 'parameters' | 'gradients' | 'optimizer' | 'state' | 'inputs' | 'activations' | 'backward' | 'update' | 'metrics';

export const CATEGORY_LABELS: Record<Category, string> = {
  parameters: 'parameters (weights on the device)',
  gradients: 'parameter gradients',
  optimizer: 'AdamW exp_avg + exp_avg_sq (f32)',
  state: 'training state (step, loss scale, RoPE tables)',
  inputs: 'batch inputs and targets',
  activations: 'activations (forward values held for backward)',
  backward: 'backward: activation gradients, recomputed layers, temporaries',
  update: 'update: global norm, guards, clip, AdamW scalars',
  metrics: 'step metrics (losses, guard and routing statistics)',
};

export interface LayerBytes {
  layer: number;
  /** Live at the peak, made in this layer's forward (activations) and backward (recomputation, gradients). */
  forward: number;
  backward: number;
}

export interface MemoryPlan {
  target: { name: string; description: string; family: string; maxBindingBytes: number; maxBufferBytes: number };
  /** Every device-dependent kernel choice the step was planned with (src/kernels/policy.ts), from the target's caps. */
  policy: KernelPolicy;
  model: { name: string; parameters: number; activeParameters: number; layers: number; hidden: number };
  run: {
    /** schedule.steps: optimizer steps of the configured schedule. */
    steps: number;
    microBatch: number;
    contextLength: number;
    accumulation: number;
    activations: 'f32' | 'f16';
    recompute: boolean;
    metricsEvery: number;
    offload: 'none' | 'host';
    task: string;
    auxConvention: string;
  };
  tokensPerMicroBatch: number;
  /** Highest live bytes of the pool over the measured window: what metrics.jsonl reports as peakBytes. */
  peakBytes: number;
  /** Live before the measured window: parameters, AdamW state, training state. */
  residentBytes: number;
  /** The step region at the peak. */
  peakPhase: string;
  categories: Record<Category, number>;
  perLayer: LayerBytes[];
  /** Live bytes when the first backward of the measured step starts (activations at the end of the forward). */
  forwardEndBytes: number;
  /** The largest single buffer of the run (it must fit one storage binding), and the largest live at the peak. */
  largestBuffer: PlanBuffer;
  largestAtPeak: PlanBuffer[];
  /** What the Dawn runtime would reject on this target: a binding or buffer over its limit, a grid over its size. */
  violations: LimitViolation[];
  budget: { totalBytes: number; reserveBytes: number; usableBytes: number };
  /**
   * Two verdicts, apart: the device (peak within the usable budget, nothing over a limit) and the
   * host (the offloaded optimizer within host.availableBytes; null without offload). A plan is
   * often made on another machine than the training one, so `--plan` exits on the device verdict
   * and on the host's only when --host-gb named the training machine's RAM; a training run
   * refuses either (src/train/cli/train.ts, src/train/run/run.ts; docs/PLANNER.md "Verdicts").
   */
  deviceFits: boolean;
  hostFits: boolean | null;
  /** usable - peak (negative when it does not fit). */
  headroomBytes: number;
  /** Per optimizer step, from the meta runtime's counters. */
  dispatchesPerStep: number;
  submitsPerStep: number;
  /** FLOPs of one optimizer step (forward + backward, attention and recomputation included), and of its backward. */
  flopsPerStep: number;
  backwardFlopsPerStep: number;
  /** optim.offload "host": the host memory the optimizer takes and what crosses the bus per step. */
  host: HostPlan | null;
  suggestions: Suggestion[];
  notes: string[];
}

export interface HostPlan {
  masterBytes: number;
  momentsBytes: number;
  /** Gradient staging of one streamed group. */
  stagingBytes: number;
  totalBytes: number;
  /** Host memory the plan is checked against: this machine's RAM (os.totalmem) or --host-gb. */
  availableBytes: number;
  availableFrom: 'this machine' | '--host-gb';
  fits: boolean;
  /** Per optimizer step: gradients down, working weights up. */
  downBytes: number;
  upBytes: number;
  /** Parameters the host AdamW updates per step. */
  parameters: number;
}

export interface PlanOptions {
  target: TargetProfile;
  /**
   * Host memory for an offloaded optimizer: the caller's (run.ts planFor: this machine's RAM or
   * --host-gb). Without it an offloaded optimizer's host side is not checked.
   */
  hostBytes?: number;
  /** Where hostBytes came from, for the verdict's wording (default: '--host-gb' when hostBytes is given). */
  hostFrom?: HostPlan['availableFrom'];
  /** Memory of the target (default: the target's own). */
  budgetBytes?: number;
  reserveBytes?: number;
  /** Skip the search for suggestions (the search itself plans with this off). */
  suggestions?: boolean;
}

/** The live allocations at the first moment the window reaches its peak. */
function liveAtPeak(sim: Simulation): { live: Allocation[]; phase: string } {
  const live = new Map(sim.start.map((a) => [a.id, a]));
  let phase = 'start of the step';
  if (sim.start.reduce((s, a) => s + a.bytes, 0) === sim.peakBytes) return { live: [...live.values()], phase };
  for (const e of sim.events) {
    if (e.kind === 'acquire') live.set(e.alloc.id, e.alloc);
    else live.delete(e.alloc.id);
    if (e.live === sim.peakBytes) {
      phase = e.alloc.region.join(' / ') || '(outside the step)';
      break;
    }
  }
  return { live: [...live.values()], phase };
}

function categorise(sim: Simulation, live: readonly Allocation[]): { categories: Record<Category, number>; perLayer: LayerBytes[] } {
  const params = new Set(sim.model.params.map((p) => sim.meta.allocationOf(p.data).id));
  // The offloaded optimizer keeps its state in host memory: nothing of it is on the GPU.
  const gpuMoments = sim.optimizer.gpuMoments();
  const optim = new Set(gpuMoments.flatMap((s) => [sim.meta.allocationOf(s.m).id, sim.meta.allocationOf(s.v).id]));
  const categories = Object.fromEntries(Object.keys(CATEGORY_LABELS).map((k) => [k, 0])) as Record<Category, number>;
  const perLayer: LayerBytes[] = sim.model.layers.map((_, layer) => ({ layer, forward: 0, backward: 0 }));
  for (const a of live) {
    const top = a.region[0];
    let c: Category;
    if (params.has(a.id)) c = 'parameters';
    else if (optim.has(a.id)) c = 'optimizer';
    else if (sim.gradients.has(a.id)) c = 'gradients';
    else if (top === 'forward' || top === 'backward' || top === 'update' || top === 'metrics') c = top === 'forward' ? 'activations' : top;
    else if (top === 'inputs' && a.label.startsWith('batch.')) c = 'inputs';
    else c = 'state';
    categories[c] += a.bytes;
    const layerRegion = a.region.find((r) => r.startsWith('layer '));
    if (layerRegion && (top === 'forward' || top === 'backward') && c !== 'gradients') perLayer[Number(layerRegion.slice(6))]![top] += a.bytes;
  }
  return { categories, perLayer };
}

/** The model's name for the plan: the preset, unless dimensions were changed from it. */
function modelName(cfg: TrainConfig): string {
  const m = cfg.model;
  const dims = `hidden ${m.hidden}, ${m.layers} layers, ${m.experts} experts top-${m.topK}, expert ${m.moeIntermediate}, shared ${m.sharedIntermediate}`;
  return m.preset === 'custom' ? `custom (${dims})` : `${m.preset} (${dims})`;
}

export function planRun(cfg: TrainConfig, opts: PlanOptions): MemoryPlan {
  const { target } = opts;
  const sim = simulate(cfg, target);
  // A readback inside the step other than its one metrics readback would be a wrapper that waits
  // on the GPU: a bug the meta runtime exposes (the step must stay one submit).
  const expected = cfg.logging.metricsEvery;
  if (sim.readbacks.length !== expected)
    throw new Error(
      `planner: the training step read back ${sim.readbacks.length} times in ${expected} steps (expected one metrics readback per step): ${sim.readbacks.join(' | ')}`,
    );
  const { live, phase } = liveAtPeak(sim);
  const { categories, perLayer } = categorise(sim, live);
  const totalBytes = opts.budgetBytes ?? target.memoryBytes;
  const reserveBytes = opts.reserveBytes ?? DEFAULT_RESERVE_BYTES;
  const usable = totalBytes - reserveBytes;
  const violations = dedupe(sim.meta.violations);
  const host = hostPlan(sim, opts.hostBytes ?? Number.POSITIVE_INFINITY, opts.hostFrom ?? (opts.hostBytes === undefined ? 'this machine' : '--host-gb'));
  const deviceFits = sim.peakBytes <= usable && violations.length === 0;
  const counts = countParameters(cfg.model);
  const notes = [
    `Planned by recording the real training step on the meta runtime with ${target.name}'s caps (${target.caps.family} kernel family): the peak is the buffer pool's, as metrics.jsonl reports it.`,
    'Steady state: steps 1..N (N = logging.metricsEvery) are recorded first; the next N are measured. Parameter gradients are freed after each update and rebuilt by the next backward.',
    `Budget: ${fmtGiB(totalBytes)} minus ${fmtGiB(reserveBytes)} kept for the driver context, Dawn and fragmentation.`,
    'Not in the peak: staging (readback) buffers, the profiler, the one-off gradient scan of a skipped step, and pool memory kept free for reuse (peakAllocatedBytes can exceed the live peak).',
  ];
  if (cfg.schedule.recompute)
    notes.push(
      'schedule.recompute: each decoder layer keeps only its input and outputs; its activations are rebuilt during backward (one extra forward per layer).',
    );
  if (cfg.precision.activations === 'f16')
    notes.push(
      'precision.activations f16: activations and their gradients are f16; router logits, norm and attention statistics, predictions and losses stay f32.',
    );
  return {
    target: {
      name: target.name,
      description: target.description,
      family: target.caps.family,
      maxBindingBytes: target.caps.limits.maxStorageBufferBindingSize,
      maxBufferBytes: target.caps.limits.maxBufferSize,
    },
    policy: sim.meta.policy,
    model: { name: modelName(cfg), parameters: counts.total, activeParameters: counts.active, layers: cfg.model.layers, hidden: cfg.model.hidden },
    run: {
      steps: cfg.schedule.steps,
      microBatch: cfg.schedule.microBatch,
      contextLength: cfg.data.contextLength,
      accumulation: cfg.schedule.accumulation,
      activations: cfg.precision.activations,
      recompute: cfg.schedule.recompute,
      metricsEvery: cfg.logging.metricsEvery,
      offload: cfg.optim.offload,
      task: cfg.model.task,
      auxConvention: cfg.loss.auxConvention,
    },
    tokensPerMicroBatch: cfg.schedule.microBatch * cfg.data.contextLength,
    peakBytes: sim.peakBytes,
    residentBytes: sim.start.reduce((s, a) => s + a.bytes, 0),
    peakPhase: phase,
    categories,
    perLayer,
    forwardEndBytes: sim.forwardEnd,
    largestBuffer: largestOf(sim),
    largestAtPeak: [...live]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 5)
      .map(planBuffer),
    violations,
    budget: { totalBytes, reserveBytes, usableBytes: usable },
    deviceFits,
    hostFits: host ? host.fits : null,
    headroomBytes: usable - sim.peakBytes,
    dispatchesPerStep: sim.dispatches,
    submitsPerStep: sim.submits,
    flopsPerStep: sim.flops,
    backwardFlopsPerStep: sim.backwardFlops,
    host,
    // Knobs are searched for the device side; a host that is too small is a machine question.
    suggestions:
      deviceFits || opts.suggestions === false
        ? []
        : suggest(cfg, { ...opts, reserveBytes }, { peakBytes: sim.peakBytes, violations, largest: largestOf(sim) }),
    notes,
  };
}

/**
 * Whether `--plan` exits 2: the device does not fit, or the host does not fit the RAM --host-gb
 * named. Against this machine's own RAM the host verdict is a warning: a plan is often made on
 * another machine than the training one (a training run checks its own host, src/train/run/run.ts).
 */
export function planRefuses(plan: MemoryPlan): boolean {
  return !plan.deviceFits || (plan.hostFits === false && plan.host?.availableFrom === '--host-gb');
}

/** The host side of an offloaded optimizer, from the hostBytes of the one the simulation built (null: it holds none, no offload). */
function hostPlan(sim: Simulation, availableBytes: number, availableFrom: HostPlan['availableFrom']): HostPlan | null {
  const h = sim.optimizer.hostBytes;
  if (!h) return null;
  const totalBytes = h.master + h.moments + h.staging;
  return {
    masterBytes: h.master,
    momentsBytes: h.moments,
    stagingBytes: h.staging,
    totalBytes,
    availableBytes,
    availableFrom,
    fits: totalBytes <= availableBytes,
    downBytes: sim.gradientBytes,
    upBytes: sim.model.params.reduce((a, p) => a + p.data.byteLength, 0),
    parameters: sim.model.parameterCount,
  };
}

/** One violation per (limit, buffer or kernel): the first kernel that binds an oversized buffer names it. */
function dedupe(vs: readonly LimitViolation[]): LimitViolation[] {
  const seen = new Map<string, LimitViolation>();
  for (const v of vs) if (!seen.has(`${v.limit}|${v.subject}|${v.value}`)) seen.set(`${v.limit}|${v.subject}|${v.value}`, v);
  return [...seen.values()];
}
