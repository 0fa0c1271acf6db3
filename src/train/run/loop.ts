/**
 * The third phase of a run: the optimizer steps, with their metrics lines, validation every
 * logging.validEvery steps (and the divergence verdict it gives), checkpoints every
 * checkpoint.every steps, and the stops: K consecutive non-finite steps, --stop-after, a signal.
 * The last step's validation and checkpoint are finish's.
 */
import { EXIT } from '../exit-codes.ts';
import { describeBad } from '../step/guards.ts';
import type { ValidMetrics } from '../step/evaluate.ts';
import type { StepMetrics } from '../step/trainer.ts';
import { deviceLoss, deviceLostStop } from './device-lost.ts';
import { divergence } from './divergence.ts';
import { deviceFault } from './faults.ts';
import { fmt } from './metrics.ts';
import { reportProfile, startProfiler } from './profile.ts';
import { createProgress } from './progress.ts';
import { saveRun } from './save.ts';
import { RunStopped, validLine, type Committed, type RunResult, type Session } from './session.ts';
import { SIGNAL_EXIT } from './signals.ts';

/** What the steps leave for finish. */
export interface LoopTally {
  last: StepMetrics | null;
  skippedSteps: number;
  overflowSteps: number;
}

/** Train from step c.start + 1 to schedule.steps; the result instead when --stop-after stopped the run. */
export async function loop(s: Session, c: Committed): Promise<LoopTally | { stopped: RunResult }> {
  const { cfg, opts, paths, show, stops } = s;
  const { rt, data, trainer, metrics, validBefore, validate, start } = c;
  const total = cfg.schedule.steps;
  const save = (step: number) => saveRun(s, c, step);

  stops.phase = 'training';
  const progress = createProgress(cfg.logging.progress, total, start);
  stops.log = (l) => progress.log(l);
  c.diagnosis.log = (l) => progress.log(l);
  const profiler = opts.profile ? startProfiler(rt) : null;
  let last: StepMetrics | null = null;
  let consecutiveBad = 0;
  let skippedSteps = 0;
  let overflowSteps = 0;
  const metricsEvery = cfg.logging.metricsEvery;
  const inFlight: Promise<StepMetrics>[] = [];
  let windowStart = performance.now();
  const judge = (v: ValidMetrics, step: number) => {
    const was = s.diverged;
    s.diverged = divergence(v.loss, v.windows, s.reference, cfg.stability.divergenceFactor);
    if (s.diverged && !was)
      progress.log(
        `[valid] step ${step}: diverged: the validation loss ${fmt(v.loss)} is ${s.diverged}. Checkpoints are now saved as diverged-step-N, not marked latest (latest stays ${s.lastGood ? show(s.lastGood) : 'unset'})`,
      );
    if (!s.diverged && was) progress.log(`[valid] step ${step}: the validation loss recovered (${fmt(v.loss)}); checkpoints are marked latest again`);
  };
  let step = start;
  try {
    for (step = start + 1; step <= total; step++) {
      if (deviceFault(`step-${step}`)) rt.loseDevice(); // test-only: WEBGPU_MOE_FAULT=DEVICE_LOST@step-K
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
          progress.log(
            `[scale] step ${m.step} skipped: gradients overflowed at loss scale ${m.lossScale} (${m.nonFinite[0] ? describeBad(m.nonFinite[0]) : 'gradient norm not finite'}); scale now ${trainer.scaler!.scale}`,
          );
        } else if (m.skipped) {
          skippedSteps++;
          consecutiveBad++;
          const first = m.nonFinite[0]
            ? describeBad(m.nonFinite[0])
            : metricsEvery > 1
              ? '(a gradient: with logging.metricsEvery > 1 it is not named; use 1 to name it)'
              : '(the skip flag was set, no tensor named)';
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
        return {
          stopped: {
            outcome: 'stopped',
            steps: step,
            validBefore,
            validAfter: await validate(),
            last,
            skippedSteps,
            overflowSteps,
            reference: s.reference,
            checkpoint: path,
            latestGood: s.lastGood,
            metricsPath: paths.metrics,
            ...(s.diverged ? { diverged: s.diverged } : {}),
          },
        };
      }
      if (signalled) {
        const path = saved ?? (await save(step));
        const sig = stops.received!;
        throw new RunStopped(
          `${sig} at step ${step}: checkpoint saved at ${show(path)}${s.diverged ? ' (diverged, not marked latest)' : ' (continue with --resume)'}`,
          SIGNAL_EXIT[sig],
        );
      }
    }
  } catch (e) {
    // A lost GPU: its weights are gone, nothing can be saved; say where the last good state is.
    const lost = await deviceLoss(rt, e);
    if (lost) throw deviceLostStop(s, lost, `at step ${step}`);
    throw e;
  } finally {
    progress.stop();
    stops.log = (l) => console.error(l);
    c.diagnosis.log = (l) => console.error(l);
    if (profiler && !rt.gpu.lost) await reportProfile(rt, profiler, paths.profile, show);
  }
  return { last, skippedSteps, overflowSteps };
}
