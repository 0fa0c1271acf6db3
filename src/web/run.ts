/**
 * A training run inside the page: the same model, optimizer, Trainer, step and validation as
 * train.js (src/train/step), on the page's device, in the order train.js runs them (validation
 * before training, the steps, validation every logging.validEvery steps and after the last one).
 * Records are the metrics lines train.js writes (metrics.jsonl), handed to `sink` instead of a
 * file. What stays on Node: checkpoints, resume, the run folder, signals, the host-offloaded
 * optimizer (docs/BROWSER.md).
 */
import type { DawnRuntime } from '../kernels/runtime.ts';
import type { DeviceCaps } from '../kernels/caps.ts';
import { diagnosisHeaderFields } from '../diagnose/header-fields.ts';
import type { RunHeader } from '../ui/observer.ts';
import type { TrainConfig } from '../train/config.ts';
import type { LoadedData } from '../train/data/prepare.ts';
import { planRun, type MemoryPlan } from '../train/plan/planner.ts';
import { formatPlan } from '../train/plan/format.ts';
import type { TargetProfile } from '../train/plan/targets.ts';
import { evaluate, type ValidMetrics } from '../train/step/evaluate.ts';
import { buildRunModel, type RunModel } from '../train/step/model-setup.ts';
import { Trainer, type StepMetrics } from '../train/step/trainer.ts';
import { safetensorsParts } from '../train/persist/safetensors-bytes.ts';

/** What a run tells the page: its header once, then every metrics record (train and valid lines), then how it ended. */
export interface RunSink {
  header(h: RunHeader): void;
  record(r: { kind: 'train'; step: number } & StepMetrics): void;
  valid(r: { kind: 'valid'; step: number } & ValidMetrics): void;
  log(line: string): void;
}

export type RunEnd = { outcome: 'done' | 'stopped'; steps: number } | { outcome: 'failed'; steps: number; message: string };

/**
 * The page's device as a planning target: its own caps (limits, features, kernel family) and
 * `memoryBytes`, the page's "plan for GiB" (train.js --budget-gb): WebGPU does not tell a page how
 * much memory the device has.
 */
export function pageTarget(caps: DeviceCaps, memoryBytes: number): TargetProfile {
  const a = caps.adapter;
  return {
    name: 'this',
    description: `this browser's adapter: ${[a.vendor, a.architecture, a.device || a.description].filter(Boolean).join(' ') || 'unnamed'}; memory as given on the page`,
    memoryBytes,
    caps,
    peak: null,
  };
}

/** The plan of `cfg` on the page's device (the meta runtime with the device's caps: src/train/plan). */
export function planInPage(cfg: TrainConfig, caps: DeviceCaps, memoryBytes: number): { plan: MemoryPlan; text: string } {
  const plan = planRun(cfg, { target: pageTarget(caps, memoryBytes) });
  return { plan, text: formatPlan(plan) };
}

/** Why `cfg` cannot train in a page on this device, or null. */
export function refusal(cfg: TrainConfig, caps: DeviceCaps, plan: MemoryPlan): string | null {
  if (cfg.optim.offload !== 'none')
    return `optim.offload "${cfg.optim.offload}" keeps the optimizer in host memory with worker threads: train.js only (set optim.offload=none)`;
  if (cfg.precision.activations === 'f16' && !caps.f16)
    return "precision.activations is 'f16' but this device has no shader-f16: set precision.activations=f32";
  if (!plan.deviceFits) {
    const fixes = plan.suggestions.map((s) => s.text).join('; ');
    return `${plan.violations.length ? 'this device cannot run the step' : 'the plan does not fit the memory given'}: see the plan${fixes ? `; what helps: ${fixes}` : ''}`;
  }
  return null;
}

/** The first `n` items of an iterable (0 or less: all of them). */
function* take<T>(items: Iterable<T>, n: number): Generator<T> {
  let i = 0;
  for (const x of items) {
    if (n > 0 && i++ >= n) return;
    yield x;
  }
}

export class PageRun {
  readonly built: RunModel;
  readonly trainer: Trainer;
  /** Optimizer steps done. */
  step = 0;
  private stopRequested = false;

  constructor(
    readonly rt: DawnRuntime,
    readonly cfg: TrainConfig,
    readonly data: LoadedData,
    readonly planText: string,
  ) {
    // No host workers: optim.offload "host" is refused before (refusal()).
    this.built = buildRunModel(rt, cfg);
    this.trainer = new Trainer(rt, this.built.model, this.built.optimizer, cfg);
  }

  /** Stop after the step in flight (the weights stay on the device: they can still be downloaded). */
  stop(): void {
    this.stopRequested = true;
  }

  private validate(): Promise<ValidMetrics> {
    const { rt, cfg, data, trainer } = this;
    const lossOpts = trainer.lossOptions(Math.max(1, this.built.optimizer.step));
    return evaluate(rt, this.built.model, data.valid.batches(cfg.schedule.microBatch), lossOpts, cfg.logging.validBatches, cfg.precision.activations);
  }

  async train(sink: RunSink): Promise<RunEnd> {
    const { rt, cfg, data, trainer } = this;
    const m = cfg.model;
    const fields = diagnosisHeaderFields({
      task: m.task,
      numClasses: m.numClasses,
      horizons: m.horizons,
      huberDelta: cfg.loss.huberDelta,
      normalize: cfg.data.normalize,
      report: data.report,
      validBatches: () => take(data.valid.batches(cfg.schedule.microBatch), cfg.logging.validBatches),
      train: data.train,
    });
    sink.header({
      config: cfg,
      parameters: this.built.model.parameterCount,
      plan: this.planText,
      adapter: rt.caps.adapter,
      startStep: 0,
      startedAt: new Date().toISOString(),
      ...fields,
    });
    const total = cfg.schedule.steps;
    try {
      const before = await this.validate();
      sink.valid({ kind: 'valid', step: 0, ...before });
      for (let step = 1; step <= total; step++) {
        if (this.stopRequested) {
          sink.log(`stopped after step ${this.step}`);
          return { outcome: 'stopped', steps: this.step };
        }
        const micro = Array.from({ length: cfg.schedule.accumulation }, () => data.train.nextBatch(cfg.schedule.microBatch));
        // As train.js's loop records it (run/loop.ts); one readback per step.
        const metrics = await trainer.resolve(trainer.record(step, micro, { keepGrads: cfg.logging.metricsEvery === 1 }));
        this.step = step;
        sink.record({ kind: 'train', ...metrics });
        if (metrics.skipped && !metrics.overflow) sink.log(`step ${step} skipped: ${metrics.nonFinite[0]?.name ?? 'a gradient'} went non-finite`);
        const last = step === total;
        if (last || (cfg.logging.validEvery > 0 && step % cfg.logging.validEvery === 0)) sink.valid({ kind: 'valid', step, ...(await this.validate()) });
      }
      return { outcome: 'done', steps: this.step };
    } catch (e) {
      return { outcome: 'failed', steps: this.step, message: e instanceof Error ? e.message : String(e) };
    }
  }

  /**
   * The model's weights as a safetensors file: what a train.js checkpoint's model.safetensors
   * holds (one entry per state-dict name, stacked experts split as Parameter.stateEntries says,
   * F32, the same metadata), so the file loads wherever a checkpoint's does.
   */
  async weights(): Promise<Uint8Array[]> {
    const params = this.built.model.params;
    const data = await this.rt.readMany(params.map((p) => p.data));
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    params.forEach((p, i) => {
      const all = Float32Array.from(data[i]!);
      for (const e of p.stateEntries()) tensors.set(e.name, { shape: e.shape, data: all.subarray(e.offset, e.offset + e.shape.reduce((a, b) => a * b, 1)) });
    });
    return safetensorsParts(tensors, { format: 'pt', producer: 'webgpu-moe', content: 'weights' });
  }

  dispose(): void {
    this.built.dispose();
  }
}
