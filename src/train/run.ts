/**
 * A training run: plan -> data -> model -> loop (metrics, validation, checkpoints) with resume,
 * SIGINT handling and the non-finite stop rule. Everything the CLI does after parsing flags.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRuntime, type Runtime } from '../kernels/runtime.ts';
import { timestampsPrecise } from '../kernels/device.ts';
import { GpuProfiler, formatProfile, profileJson } from '../kernels/profiler.ts';
import { TimeMoeModel } from '../model/time-moe.ts';
import { AdamW } from '../optim/adamw.ts';
import type { TrainConfig } from './config.ts';
import { formatReport, loadData } from './data/index.ts';
import { evaluate, type ValidMetrics } from './evaluate.ts';
import { describeBad } from './guards.ts';
import { MetricsLog, fmt, type MetricsObserver } from './metrics.ts';
import { createProgress } from './progress.ts';
import { Trainer, type StepMetrics } from './trainer.ts';
import { planMemory, type MemoryPlan } from './planner.ts';
import { formatPlan } from './planner-format.ts';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';

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
  /** Memory budget in bytes for the plan check (default: 24 GiB, the RTX 3090). */
  budgetBytes: number;
  /** Where the run's files go (default cfg.logging.dir). */
  cwd: string;
  /** Save a checkpoint and stop after this optimizer step (train in chunks; resume later). */
  stopAfter?: number;
  /** Time every kernel of the training steps; print a table and write <logging.dir>/profile.json. */
  profile?: boolean;
  /** Sees every metrics record in memory as it is written (the live dashboard, --ui). */
  observer?: MetricsObserver;
}

export interface RunResult {
  steps: number;
  validBefore: ValidMetrics | null;
  validAfter: ValidMetrics;
  last: StepMetrics | null;
  skippedSteps: number;
  /** Of the skipped steps, those skipped for a loss-scale overflow (f16 activations). */
  overflowSteps: number;
  /** True when --stop-after ended the run before the last step. */
  stopped?: boolean;
}

export function planFor(cfg: TrainConfig, budgetBytes: number): MemoryPlan {
  return planMemory(cfg.model, { microBatch: cfg.schedule.microBatch, contextLength: cfg.data.contextLength, dtype: cfg.precision.activations, optimizer: 'adamw', recompute: cfg.schedule.recompute, gradients: 'freed', budgetBytes });
}

function validLine(tag: string, v: ValidMetrics): string {
  return `${tag}: loss ${fmt(v.loss)} (${v.accuracy !== undefined ? `cross-entropy ${fmt(v.lossMain)} accuracy ${fmt(v.accuracy, 3)}` : `huber ${fmt(v.lossMain)}`}) ${v.horizons.map((h) => `mse@${h.horizon} ${fmt(h.mse)} mae@${h.horizon} ${fmt(h.mae)}`).join(' ')} over ${v.windows} windows`;
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const dir = join(opts.cwd, cfg.logging.dir);
  const ckptRoot = join(dir, 'checkpoints');
  mkdirSync(dir, { recursive: true });

  // Plan before allocating anything on the device.
  const plan = planFor(cfg, opts.budgetBytes);
  writeFileSync(join(dir, 'plan.txt'), formatPlan(plan));
  if (!plan.fits) throw new RunStopped(`the run does not fit the memory budget:\n${formatPlan(plan)}`, 2);

  const data = loadData(cfg.data, { cwd: opts.cwd, seed: cfg.seed });
  console.error(`[data] ${formatReport(data.report)}`);
  if (data.train.length === 0) throw new RunStopped('no training windows: the series are shorter than data.contextLength + 1 (lower contextLength or use longer series)', 2);

  const rt = await getRuntime(opts.profile ? { preciseTimestamps: true } : undefined);
  // The plan's budget check is device-independent; each buffer must also fit a single binding.
  const bindLimit = rt.device.limits.maxStorageBufferBindingSize;
  const big = plan.largestTensor;
  if (big.bytes > bindLimit) {
    const fitBatch = Math.floor((cfg.schedule.microBatch * bindLimit) / big.bytes);
    throw new RunStopped(
      `the largest single buffer of a step (${big.name}, ${(big.bytes / 2 ** 20).toFixed(1)} MiB) exceeds this device's maxStorageBufferBindingSize ` +
        `(${(bindLimit / 2 ** 20).toFixed(1)} MiB): ${fitBatch >= 1 ? `lower schedule.microBatch to ${fitBatch} or less` : 'lower data.contextLength or the model width'} (schedule.accumulation keeps the effective batch)`,
      2,
    );
  }
  const profiler = opts.profile ? startProfiler(rt) : null;
  const model = new TimeMoeModel(rt, cfg.model, cfg.seed);
  const optimizer = new AdamW(model.params, cfg.optim);
  const trainer = new Trainer(rt, model, optimizer, cfg);
  const metrics = new MetricsLog(join(dir, 'metrics.jsonl'), opts.observer);
  const lossOpts = () => trainer.lossOptions(Math.max(1, optimizer.step));
  const validate = () => evaluate(rt, model, data.valid.batches(cfg.schedule.microBatch), lossOpts(), cfg.logging.validBatches, cfg.precision.activations);

  let start = 0;
  let validBefore: ValidMetrics | null = null;
  if (opts.resume) {
    const latest = await latestCheckpoint(ckptRoot);
    if (!latest) throw new RunStopped(`--resume: no checkpoint under ${ckptRoot} (train without --resume first)`, 2);
    const state = await loadCheckpoint(latest, { params: model.params, optimizerState: optimizer.entries() });
    start = state.step;
    optimizer.step = Number(state.optimizer?.step ?? state.step);
    const ls = state.optimizer?.lossScale;
    if (trainer.scaler && ls && typeof ls === 'object' && !Array.isArray(ls)) trainer.scaler.restore(ls as { scale?: number; goodSteps?: number });
    data.train.restore(state.dataLoader);
    metrics.truncateAfter(start);
    console.error(`[resume] ${latest}: continuing after step ${start}`);
  } else {
    metrics.truncateAfter(-1);
    validBefore = await validate();
    metrics.write({ kind: 'valid', step: 0, ...validBefore });
    console.error(validLine('[valid] before training', validBefore));
  }
  console.error(`[model] ${model.parameterCount.toLocaleString()} parameters; plan peak ${(plan.totalBytes / 2 ** 20).toFixed(1)} MiB of ${(plan.budgetBytes / 2 ** 30).toFixed(1)} GiB`);
  metrics.describe({ config: cfg, parameters: model.parameterCount, plan: formatPlan(plan), adapter: rt.gpu.adapter, startStep: start, startedAt: new Date().toISOString() });

  const save = async (step: number) => {
    await rt.sync();
    const saved = await saveCheckpoint(
      ckptRoot,
      { params: model.params, optimizerState: optimizer.entries(), state: { step, optimizer: { step: optimizer.step, ...(trainer.scaler ? { lossScale: { ...trainer.scaler.state() } } : {}) }, dataLoader: data.train.state(), config: cfg } },
      { keep: cfg.checkpoint.keep },
    );
    return saved.path;
  };

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error('\n[signal] SIGINT: finishing this step, saving a checkpoint, then exiting (press again to quit now)');
  };
  process.on('SIGINT', onSigint);
  const total = cfg.schedule.steps;
  const progress = createProgress(cfg.logging.progress, total, start);
  let last: StepMetrics | null = null;
  let consecutiveBad = 0;
  let skippedSteps = 0;
  let overflowSteps = 0;
  const metricsEvery = cfg.logging.metricsEvery;
  const inFlight: Promise<StepMetrics>[] = [];
  let windowStart = performance.now();
  try {
    for (let step = start + 1; step <= total; step++) {
      const micro = Array.from({ length: cfg.schedule.accumulation }, () => data.train.nextBatch(cfg.schedule.microBatch));
      const validNow = cfg.logging.validEvery > 0 && step % cfg.logging.validEvery === 0 && step < total;
      const saveNow = (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every === 0) || step === total;
      const stopNow = opts.stopAfter !== undefined && step >= opts.stopAfter && step < total;
      // Steps are recorded ahead and their metrics read every `metricsEvery` steps, and always
      // before validation, a checkpoint, a stop or the end (the host state must be current there).
      const boundary = step % metricsEvery === 0 || validNow || saveNow || stopNow || interrupted;
      if (inFlight.length === 0) windowStart = performance.now();
      profiler?.resume();
      // Read every step: the gradients are kept until the readback, so a bad one can be named,
      // and the profiler's wall-clock window spans the step's GPU work.
      const pending = trainer.resolve(trainer.record(step, micro, { keepGrads: metricsEvery === 1 }));
      if (metricsEvery === 1) await pending;
      inFlight.push(pending);
      profiler?.pause();
      if (!boundary) continue;
      const done = await Promise.all(inFlight.splice(0));
      // Deferred steps overlap: each gets an equal share of its window's wall time.
      if (metricsEvery > 1) for (const m of done) m.ms = (performance.now() - windowStart) / done.length;
      let stop: string | null = null;
      for (const m of done) {
        last = m;
        metrics.write({ kind: 'train', ...m });
        progress.update(m);
        if (m.overflow) {
          // f16 range, not a broken run: the scale is halved and the step retried with new data.
          skippedSteps++;
          overflowSteps++;
          progress.log(`[scale] step ${m.step} skipped: gradients overflowed at loss scale ${m.lossScale} (${m.nonFinite[0] ? describeBad(m.nonFinite[0]) : 'gradient norm not finite'}); scale now ${trainer.scaler!.scale}`);
        } else if (m.skipped) {
          skippedSteps++;
          consecutiveBad++;
          const first = m.nonFinite[0] ? describeBad(m.nonFinite[0]) : metricsEvery > 1 ? '(a gradient: with logging.metricsEvery > 1 it is not named; use 1 to name it)' : '(the skip flag was set, no tensor named)';
          progress.log(`[guard] step ${m.step} skipped (weights and optimizer state unchanged): first non-finite tensor ${first}`);
          if (consecutiveBad >= cfg.stability.maxConsecutiveBadSteps && !stop) stop = `stopping: ${consecutiveBad} consecutive non-finite steps (stability.maxConsecutiveBadSteps). The last good weights are saved at %PATH%. First bad tensor: ${first}`;
        } else consecutiveBad = 0;
      }
      if (stop) {
        // Skipped steps left the weights alone: what is on the GPU now is the last good state.
        const path = await save(step);
        throw new RunStopped(stop.replace('%PATH%', path), 1);
      }
      if (validNow) {
        const v = await validate();
        metrics.write({ kind: 'valid', step, ...v });
        progress.log(validLine(`[valid] step ${step}`, v));
      }
      if (saveNow) await save(step);
      if (stopNow) {
        const path = await save(step);
        progress.log(`[stop] --stop-after ${opts.stopAfter}: checkpoint saved at ${path} (continue with --resume)`);
        return { steps: step, validBefore, validAfter: await validate(), last, skippedSteps, overflowSteps, stopped: true };
      }
      if (interrupted) {
        const path = await save(step);
        throw new RunStopped(`interrupted at step ${step}; checkpoint saved at ${path} (continue with --resume)`, 130);
      }
    }
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    if (profiler) await reportProfile(rt, profiler, dir);
  }
  const validAfter = await validate();
  metrics.write({ kind: 'valid', step: total, ...validAfter });
  console.error(validLine('[valid] after training', validAfter));
  trainer.dispose();
  optimizer.dispose();
  model.dispose();
  return { steps: total, validBefore, validAfter, last, skippedSteps, overflowSteps };
}

function startProfiler(rt: Runtime): GpuProfiler | null {
  const p = new GpuProfiler(rt);
  if (p.supported) return p;
  console.error("[profile] this device has no 'timestamp-query' feature: --profile records nothing");
  return null;
}

/** Print the per-op table to stderr and write profile.json; a failure here must not hide the run's own outcome. */
async function reportProfile(rt: Runtime, profiler: GpuProfiler, dir: string): Promise<void> {
  try {
    profiler.pause();
    await profiler.flush();
    const precise = timestampsPrecise();
    console.error(formatProfile(profiler.summary('op'), { byShader: profiler.summary('shader'), precise }));
    const path = join(dir, 'profile.json');
    writeFileSync(path, `${JSON.stringify(profileJson(profiler, { adapter: rt.gpu.adapter, preciseTimestamps: precise }), null, 2)}\n`);
    console.error(`[profile] written to ${path}`);
    profiler.destroy();
  } catch (e) {
    console.error(`[profile] could not report: ${e instanceof Error ? e.message : String(e)}`);
  }
}
