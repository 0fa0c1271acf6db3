/**
 * A training run: plan -> checks (run folder and lock, data, device, checkpoint) -> commit (the
 * first write to the run folder) -> loop (metrics, validation, checkpoints) with resume, SIGINT /
 * SIGTERM handling, the non-finite stop rule and the divergence verdict. Everything the CLI does
 * after parsing flags. Nothing is written to the run folder until every check has passed.
 */
import { basename, dirname, join } from 'node:path';
import { getRuntime, type DawnRuntime } from '../../kernels/runtime.ts';
import type { Backend } from '../../kernels/tensor.ts';
import { timestampsPrecise } from '../../kernels/device.ts';
import { GpuProfiler, formatProfile, profileJson } from '../../kernels/profiler.ts';
import { ConfigError, type TrainConfig } from '../config.ts';
import { DataError, formatReport, loadData } from '../data/index.ts';
import { evaluate, type ValidMetrics } from '../step/evaluate.ts';
import { describeBad } from '../step/guards.ts';
import { MetricsLog, fmt } from './metrics.ts';
import { createLoadProgress, createProgress } from './progress.ts';
import { Trainer, type StepMetrics } from '../step/trainer.ts';
import { planRun, type MemoryPlan } from '../plan/planner.ts';
import { formatPlan } from '../plan/format.ts';
import { describe as describeViolation } from '../plan/suggestions.ts';
import { thisTarget, type TargetProfile } from '../plan/targets.ts';
import { stepMatmuls } from '../plan/simulate.ts';
import { loadTuning, tuneMatmuls, tuningCachePath } from '../../kernels/matmul-tune.ts';
import { CheckpointError, DIVERGED_RE, loadCheckpoint, pointLatest, saveCheckpoint, type CheckpointProgress } from '../persist/checkpoint.ts';
import { EXIT } from '../exit-codes.ts';
import { faultAt, injectFault } from './faults.ts';
import { IoError, writeFileAtomic } from '../../util/atomic-write.ts';
import { RunLock, checkFreshRun, runPaths, setAside, shownPath } from './run-dir.ts';
import { availableSteps, pickResume } from './resume.ts';
import { SIGNAL_EXIT, StopRequests } from './signals.ts';
import { divergence, divergenceFix } from './divergence.ts';
import { prepareInitFrom } from '../interop/init-from.ts';
import { buildRunModel } from '../step/model-setup.ts';
import type { MetricsObserver } from '../../ui/observer.ts';

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

export function planFor(cfg: TrainConfig, target: TargetProfile, budgetBytes?: number, hostBytes?: number): MemoryPlan {
  return planRun(cfg, { target, budgetBytes, hostBytes });
}

/** What optim.freeze / optim.lora keep fixed and add, for the [model] line. */
function fineTuneLine(cfg: TrainConfig): string {
  const l = cfg.optim.lora;
  return [cfg.optim.freeze.length ? `frozen ${cfg.optim.freeze.join(', ')}` : '', l ? `LoRA rank ${l.rank} alpha ${l.alpha} on ${l.targets.join(', ')}` : ''].filter(Boolean).join('; ');
}

function validLine(tag: string, v: ValidMetrics): string {
  return `${tag}: loss ${fmt(v.loss)} (${v.accuracy !== undefined ? `cross-entropy ${fmt(v.lossMain)} accuracy ${fmt(v.accuracy, 3)}` : `huber ${fmt(v.lossMain)}`}) ${v.horizons.map((h) => `mse@${h.horizon} ${fmt(h.mse)} mae@${h.horizon} ${fmt(h.mae)}`).join(' ')} over ${v.windows} windows`;
}

/** The loss before training, as saved in a checkpoint's state.metrics (null when absent). */
function savedReference(metrics: Record<string, unknown>): number | null {
  const v = metrics.validBefore;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const paths = runPaths(opts.cwd, cfg.logging.dir);
  const show = (p: string) => shownPath(p, opts.cwd);
  const resume = opts.resume || opts.resumeFrom !== undefined;

  // Plan before allocating anything on the device.
  const plan = planFor(cfg, opts.target, opts.budgetBytes, opts.hostBytes);
  if (!plan.fits) throw new ConfigError(`the run does not fit ${opts.target.name}:\n${formatPlan(plan)}`);

  // The checks: each may refuse the run, and none writes to the run folder (the lock aside).
  const lock = RunLock.acquire(paths, opts.cwd, (l) => console.error(l));
  const stops = new StopRequests(() => lock.release());
  const notStopped = () => {
    if (stops.received) throw new RunStopped(`${stops.received} before training started: nothing was written to ${show(paths.dir)}`, SIGNAL_EXIT[stops.received]);
  };
  let committed = false;
  let lastGood: string | null = null;
  try {
    const overwrite = resume ? [] : checkFreshRun(paths, !!opts.overwrite, opts.cwd);
    const pick = resume ? await pickResume(paths.checkpoints, opts.resumeFrom, opts.cwd) : null;

    // model.init.from: its config is checked before the data and the device (a resume ignores it).
    const initFrom = cfg.model.init.from && !resume ? await prepareInitFrom(cfg.model, cfg.model.init.from, opts.cwd) : null;
    const data = await loadData(cfg.data, { cwd: opts.cwd, seed: cfg.seed, signal: stops.signal, progress: (file, bytes) => createLoadProgress(cfg.logging.progress, file, bytes) }).catch((e: unknown) => {
      notStopped(); // an aborted load is the signal's doing: say so, not "AbortError"
      throw e;
    });
    console.error(`[data] ${formatReport(data.report)}`);
    if (data.train.length === 0) throw new DataError('no training windows: the series are shorter than data.contextLength + 1 (lower contextLength or use longer series)');

    const rt = await getRuntime({ preciseTimestamps: !!opts.profile, kernels: cfg.device.kernels });
    notStopped();
    // The target plan says the memory fits; the open device's own limits (per-binding size, grid)
    // and kernel family decide whether its kernels can run: plan once more with its caps.
    const here = planRun(cfg, { target: thisTarget(rt.caps), budgetBytes: Number.MAX_SAFE_INTEGER, reserveBytes: 0, hostBytes: Number.MAX_SAFE_INTEGER });
    if (here.violations.length) {
      const fixes = here.suggestions.map((x) => `\n  - ${x.text}`).join('');
      throw new ConfigError(`this device cannot run the step: ${here.violations.map(describeViolation).join('; ')}${fixes ? `\nwhat helps (each planned on this device):${fixes}` : ''}`);
    }
    if (cfg.device.autotune && rt.caps.family === 'gpu' && !rt.caps.cpuAdapter) await autotune(rt, cfg);
    const built = buildRunModel(rt, cfg);
    const { model, optimizer } = built;
    if (initFrom) console.error(await initFrom.load(model, built.weights));
    const trainer = new Trainer(rt, model, optimizer, cfg);
    const lossOpts = () => trainer.lossOptions(Math.max(1, optimizer.step));
    const validate = () => evaluate(rt, model, data.valid.batches(cfg.schedule.microBatch), lossOpts(), cfg.logging.validBatches, cfg.precision.activations);
    const total = cfg.schedule.steps;

    let start = 0;
    let reference: number | null = null;
    if (pick) {
      for (const s of pick.skipped) console.error(`[resume] skipped ${s.name}: ${s.reason}`);
      const state = await loadCheckpoint(pick.dir, { params: model.params, weights: built.weights, optimizerState: built.slots() }).catch(async (e: unknown) => {
        if (e instanceof CheckpointError) throw new CheckpointError(e.file, e.problem, `${e.fix}; checkpoints here: ${await availableSteps(paths.checkpoints)}`);
        throw e;
      });
      start = state.step;
      optimizer.step = Number(state.optimizer?.step ?? state.step);
      const ls = state.optimizer?.lossScale;
      if (trainer.scaler && ls && typeof ls === 'object' && !Array.isArray(ls)) trainer.scaler.restore(ls as { scale?: number; goodSteps?: number });
      data.train.restore(state.dataLoader);
      reference = savedReference(state.metrics);
      if (start >= total) {
        console.error(`[resume] ${show(pick.dir)} is at step ${start}, and schedule.steps is ${total}: nothing to train`);
        return { outcome: 'finished', steps: start, validBefore: null, validAfter: null, last: null, skippedSteps: 0, overflowSteps: 0, reference, metricsPath: paths.metrics };
      }
      if (opts.stopAfter !== undefined && opts.stopAfter <= start)
        throw new ConfigError(`--stop-after ${opts.stopAfter}: the run resumes after step ${start}, so it would stop before training. Pass a later step (${start + 1}..${total - 1}) or leave --stop-after out`);
      if (!DIVERGED_RE.test(basename(pick.dir))) lastGood = pick.dir;
    }
    notStopped();

    // Commit: every check passed. From here on the run writes its folder.
    committed = true;
    writeFileAtomic(paths.plan, formatPlan(plan), { action: 'writing', beforeWrite: faultAt('plan.txt') });
    if (overwrite.length) {
      const to = setAside(paths, 'overwritten', overwrite.map((f) => join(paths.dir, f)));
      console.error(`[overwrite] the previous run in ${show(paths.dir)} was moved to ${show(to)} (nothing deleted)`);
    }
    const metrics = new MetricsLog(paths.metrics, opts.observer);
    metrics.describe(paths.header, { config: cfg, parameters: model.parameterCount, plan: formatPlan(plan), adapter: rt.caps.adapter, startStep: start, startedAt: new Date().toISOString() });
    let validBefore: ValidMetrics | null = null;
    if (pick) {
      if (pick.newer.length) {
        const tail = metrics.linesAfter(start);
        const to = setAside(paths, `after-step-${start}`, pick.newer, tail ? { name: 'metrics-after-step.jsonl', text: tail } : undefined);
        console.error(`[resume] checkpoints after step ${start} moved to ${show(to)} (not deleted)${tail ? ', with the metrics lines of those steps' : ''}`);
      }
      // `latest` must not name a folder just moved aside; it names what the run continues from (or nothing).
      if (pick.latestMoves) await pointLatest(paths.checkpoints, dirname(pick.dir) === paths.checkpoints && !DIVERGED_RE.test(basename(pick.dir)) ? basename(pick.dir) : null);
      metrics.truncateAfter(start);
      console.error(`[resume] ${show(pick.dir)}: continuing after step ${start}`);
    } else {
      metrics.truncateAfter(-1);
      validBefore = await validate();
      reference = validBefore.windows > 0 ? validBefore.loss : null;
      metrics.write({ kind: 'valid', step: 0, ...validBefore });
      console.error(validLine('[valid] before training', validBefore));
    }
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.error(
      `[model] ${model.parameterCount.toLocaleString()} parameters${built.trainable.length < model.params.length ? ` (${built.trainable.reduce((a, p) => a + p.data.size, 0).toLocaleString()} trainable: ${fineTuneLine(cfg)})` : ''}; planned peak ${mib(here.peakBytes)} on this device (${rt.caps.family} kernels)` +
        `${opts.target.name === 'this' ? '' : `, ${mib(plan.peakBytes)} of ${(plan.budget.totalBytes / 2 ** 30).toFixed(1)} GiB on ${opts.target.name}`}`,
    );

    // Set by a validation that judged the run diverged; cleared when a later one recovers.
    let diverged: string | null = null;
    const save = async (step: number): Promise<string> => {
      await rt.sync();
      const name = diverged ? `diverged-step-${step}` : `step-${step}`;
      const saved = await saveCheckpoint(
        paths.checkpoints,
        {
          params: model.params,
          weights: built.weights,
          optimizerState: built.slots(),
          state: { step, optimizer: { step: optimizer.step, ...(trainer.scaler ? { lossScale: { ...trainer.scaler.state() } } : {}) }, dataLoader: data.train.state(), config: cfg, metrics: { validBefore: reference } },
        },
        { keep: cfg.checkpoint.keep, name, latest: !diverged, onProgress: checkpointFaults(name) },
      );
      if (!diverged) lastGood = saved.path;
      return saved.path;
    };

    stops.phase = 'training';
    const progress = createProgress(cfg.logging.progress, total, start);
    stops.log = (l) => progress.log(l);
    const profiler = opts.profile ? startProfiler(rt) : null;
    let last: StepMetrics | null = null;
    let consecutiveBad = 0;
    let skippedSteps = 0;
    let overflowSteps = 0;
    const metricsEvery = cfg.logging.metricsEvery;
    const inFlight: Promise<StepMetrics>[] = [];
    let windowStart = performance.now();
    const judge = (v: ValidMetrics, step: number) => {
      const was = diverged;
      diverged = divergence(v.loss, v.windows, reference, cfg.stability.divergenceFactor);
      if (diverged && !was) progress.log(`[valid] step ${step}: diverged: the validation loss ${fmt(v.loss)} is ${diverged}. Checkpoints are now saved as diverged-step-N, not marked latest (latest stays ${lastGood ? show(lastGood) : 'unset'})`);
      if (!diverged && was) progress.log(`[valid] step ${step}: the validation loss recovered (${fmt(v.loss)}); checkpoints are marked latest again`);
    };
    try {
      for (let step = start + 1; step <= total; step++) {
        const micro = Array.from({ length: cfg.schedule.accumulation }, () => data.train.nextBatch(cfg.schedule.microBatch));
        const lastStep = step === total;
        const validNow = cfg.logging.validEvery > 0 && step % cfg.logging.validEvery === 0 && !lastStep;
        // The last step's checkpoint is saved after the final validation, which decides its name.
        const saveNow = cfg.checkpoint.every > 0 && step % cfg.checkpoint.every === 0 && !lastStep;
        const stopNow = opts.stopAfter !== undefined && step >= opts.stopAfter && !lastStep;
        // A signal on the last step: finishing the run costs one validation, so it finishes.
        const signalled = stops.received !== null && !lastStep;
        // Steps are recorded ahead and their metrics read every `metricsEvery` steps, and always
        // before validation, a checkpoint, a stop or the end (the host state must be current there).
        const boundary = step % metricsEvery === 0 || validNow || saveNow || stopNow || signalled || lastStep;
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
            if (consecutiveBad >= cfg.stability.maxConsecutiveBadSteps && !stop)
              stop =
                `${consecutiveBad} consecutive non-finite steps (stability.maxConsecutiveBadSteps ${cfg.stability.maxConsecutiveBadSteps}) at step ${m.step}. The last good weights are saved at %PATH% (continue with --resume). ` +
                `First bad tensor: ${first}. Fix: check the data for NaN/Inf (data.nonFinite), lower optim.lr (now ${cfg.optim.lr})${cfg.precision.activations === 'f16' ? ', or train with precision.activations=f32' : ''}`;
          } else consecutiveBad = 0;
        }
        if (stop) {
          // Skipped steps left the weights alone: what is on the GPU now is the last good state.
          const path = await save(step);
          throw new RunStopped(stop.replace('%PATH%', show(path)), EXIT.stopped);
        }
        if (validNow) {
          const v = await validate();
          metrics.write({ kind: 'valid', step, ...v });
          progress.log(validLine(`[valid] step ${step}`, v));
          judge(v, step);
        }
        const saved = saveNow ? await save(step) : null;
        if (stopNow) {
          const path = saved ?? (await save(step));
          progress.log(`[stop] --stop-after ${opts.stopAfter}: checkpoint saved at ${show(path)} (continue with --resume)`);
          return { outcome: 'stopped', steps: step, validBefore, validAfter: await validate(), last, skippedSteps, overflowSteps, reference, checkpoint: path, latestGood: lastGood, metricsPath: paths.metrics, ...(diverged ? { diverged } : {}) };
        }
        if (signalled) {
          const path = saved ?? (await save(step));
          const sig = stops.received!;
          throw new RunStopped(`${sig} at step ${step}: checkpoint saved at ${show(path)}${diverged ? ' (diverged, not marked latest)' : ' (continue with --resume)'}`, SIGNAL_EXIT[sig]);
        }
      }
    } finally {
      progress.stop();
      stops.log = (l) => console.error(l);
      if (profiler) await reportProfile(rt, profiler, paths.profile, show);
    }
    const validAfter = await validate();
    metrics.write({ kind: 'valid', step: total, ...validAfter });
    console.error(validLine('[valid] after training', validAfter));
    // The final verdict is the last line's to tell; no separate [valid] line for it.
    diverged = divergence(validAfter.loss, validAfter.windows, reference, cfg.stability.divergenceFactor);
    const checkpoint = await save(total);
    trainer.dispose();
    built.dispose();
    const end = { steps: total, validBefore, validAfter, last, skippedSteps, overflowSteps, reference, checkpoint, latestGood: lastGood, metricsPath: paths.metrics };
    return diverged ? { outcome: 'diverged', diverged: `${diverged}. Fix: ${divergenceFix(cfg, !Number.isFinite(validAfter.loss))}`, ...end } : { outcome: 'done', ...end };
  } catch (e) {
    // Disk full or another I/O failure once the run is writing: say what is safe and how to go on.
    if (committed && e instanceof IoError)
      throw new RunStopped(
        `${e.message}. Nothing half-written is left behind (temp files removed); ${lastGood ? `the last good checkpoint, ${show(lastGood)}, is intact: after freeing space, continue with --resume` : 'no checkpoint was saved yet: after freeing space, start again with --overwrite'}`,
        EXIT.stopped,
      );
    throw e;
  } finally {
    stops.dispose();
    lock.release(!committed);
  }
}

/** Test-only disk-full points (faults.ts): one per checkpoint file and one before `latest` moves. */
function checkpointFaults(name: string): (e: CheckpointProgress) => void {
  return (e) => {
    if (e.phase === 'writing' && e.file) injectFault(`checkpoint:${name}:${e.file}`);
    if (e.phase === 'state-written') injectFault(`checkpoint:${name}:state.json`);
    if (e.phase === 'renamed') injectFault(`checkpoint:${name}:latest`);
  };
}

/** Tune the tiled matmul for the step's shape classes not in this adapter's cache yet. */
async function autotune(rt: DawnRuntime, cfg: TrainConfig): Promise<void> {
  const cached = loadTuning(rt);
  const t0 = performance.now();
  const tuned = await tuneMatmuls(rt, stepMatmuls(cfg, thisTarget(rt.caps)));
  if (tuned.length) console.error(`[tune] ${tuned.length} matmul shape classes tuned in ${((performance.now() - t0) / 1000).toFixed(1)} s (${cached} cached before; ${tuningCachePath()})`);
}

function startProfiler(rt: DawnRuntime): GpuProfiler | null {
  const p = new GpuProfiler(rt);
  if (p.supported) return p;
  console.error("[profile] this device has no 'timestamp-query' feature: --profile records nothing");
  return null;
}

/** Print the per-op table to stderr and write profile.json; a failure here must not hide the run's own outcome. */
async function reportProfile(rt: Backend, profiler: GpuProfiler, path: string, show: (p: string) => string): Promise<void> {
  try {
    profiler.pause();
    await profiler.flush();
    const precise = timestampsPrecise();
    console.error(formatProfile(profiler.summary('op'), { byShader: profiler.summary('shader'), precise }));
    writeFileAtomic(path, `${JSON.stringify(profileJson(profiler, { adapter: rt.caps.adapter, preciseTimestamps: precise }), null, 2)}\n`, { action: 'writing', beforeWrite: faultAt('profile.json') });
    console.error(`[profile] written to ${show(path)}`);
    profiler.destroy();
  } catch (e) {
    console.error(`[profile] could not report: ${e instanceof Error ? e.message : String(e)}`);
  }
}
