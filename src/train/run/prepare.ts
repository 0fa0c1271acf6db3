/**
 * The first phase of a run: every check that may refuse it (the run folder, the resume point and
 * its config against this one, model.init.from, the data, the device and its limits, the
 * checkpoint to resume), then the device, the model, the optimizer and the trainer. Nothing is
 * written to the run folder here: the lock, taken before, is the only write until commit.
 */
import { basename } from 'node:path';
import { getRuntime } from '../../kernels/node/dawn.ts';
import { nodeUpdateWorkers } from '../../optim/node/update-workers.ts';
import { ConfigError } from '../config.ts';
import { countParameters, loraParameterCount } from '../../model/config.ts';
import { DataError, formatReport, loadData } from '../data/index.ts';
import { prepareInitFrom } from '../interop/init-from.ts';
import { CheckpointError, DIVERGED_RE, loadCheckpoint } from '../persist/checkpoint.ts';
import { planRun } from '../plan/planner.ts';
import { describe as describeViolation } from '../plan/suggestions.ts';
import { thisTarget } from '../plan/targets.ts';
import { evaluate } from '../step/evaluate.ts';
import { buildRunModel } from '../step/model-setup.ts';
import { Trainer } from '../step/trainer.ts';
import { autotune } from './profile.ts';
import { createLoadProgress } from './progress.ts';
import { availableSteps, checkConfigChanges, pickResume } from './resume.ts';
import { checkFreshRun } from './run-dir.ts';
import { RunStopped, type Prepared, type RunResult, type Session } from './session.ts';
import { SIGNAL_EXIT } from './signals.ts';

/** The loss before training, as saved in a checkpoint's state.metrics (null when absent). */
function savedReference(metrics: Record<string, unknown>): number | null {
  const v = metrics.validBefore;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * Check everything and set the run up. Returns the 'finished' result instead when a resume finds
 * its run already at schedule.steps (nothing to train, nothing written).
 */
export async function prepare(s: Session): Promise<Prepared | RunResult> {
  const { cfg, opts, paths, show, stops } = s;
  const resume = opts.resume || opts.resumeFrom !== undefined;
  const notStopped = () => {
    if (stops.received)
      throw new RunStopped(`${stops.received} before training started: nothing was written to ${show(paths.dir)}`, SIGNAL_EXIT[stops.received]);
  };
  const overwrite = resume ? [] : checkFreshRun(paths, !!opts.overwrite, opts.cwd);
  const pick = resume ? await pickResume(paths.checkpoints, opts.resumeFrom, opts.cwd) : null;
  // Before the data is read: a resume may not change what the run computes (resume.ts).
  const changes = pick
    ? checkConfigChanges(pick.state, cfg, opts.allowConfigChange, {
        dir: pick.dir,
        flag: opts.resumeFrom !== undefined ? `--resume-from ${opts.resumeFrom}` : '--resume',
        cwd: opts.cwd,
      })
    : [];

  const lora = cfg.optim.lora;
  if (lora) {
    const adapters = loraParameterCount(cfg.model, lora);
    const base = countParameters(cfg.model).total;
    if (adapters > base)
      console.error(
        `[lora] warning: the adapters hold ${adapters.toLocaleString('en-US')} parameters, more than the ${base.toLocaleString('en-US')} of the model they adapt: optim.lora.rank ${lora.rank} is large for this model (fine-tuning every weight would train fewer); a rank of 4 to 16 is usual`,
      );
  }
  // model.init.from: its config is checked before the data and the device (a resume ignores it).
  const initFrom = cfg.model.init.from && !resume ? await prepareInitFrom(cfg.model, cfg.model.init.from, opts.cwd, paths.dir) : null;
  const data = await loadData(cfg.data, {
    cwd: opts.cwd,
    seed: cfg.seed,
    signal: stops.signal,
    progress: (file, bytes) => createLoadProgress(cfg.logging.progress, file, bytes),
  }).catch((e: unknown) => {
    notStopped(); // an aborted load is the signal's doing: say so, not "AbortError"
    throw e;
  });
  console.error(`[data] ${formatReport(data.report)}`);
  if (data.train.length === 0)
    throw new DataError('no training windows: the series are shorter than data.contextLength + 1 (lower contextLength or use longer series)');

  const rt = await getRuntime({ preciseTimestamps: !!opts.profile, kernels: cfg.device.kernels });
  notStopped();
  // The target plan says the memory fits; the open device's own limits (per-binding size, grid)
  // and kernel family decide whether its kernels can run: plan once more with its caps.
  const here = planRun(cfg, { target: thisTarget(rt.caps), budgetBytes: Number.MAX_SAFE_INTEGER, reserveBytes: 0, hostBytes: Number.MAX_SAFE_INTEGER });
  if (here.violations.length) {
    const fixes = here.suggestions.map((x) => `\n  - ${x.text}`).join('');
    throw new ConfigError(
      `this device cannot run the step: ${here.violations.map(describeViolation).join('; ')}${fixes ? `\nwhat helps (each planned on this device):${fixes}` : ''}`,
    );
  }
  // The policy says whether this device tunes its matmuls (GPU family on a GPU: src/kernels/policy.ts).
  if (cfg.device.autotune && rt.policy.autotune) await autotune(rt, cfg);
  const built = buildRunModel(rt, cfg, { hostWorkers: nodeUpdateWorkers });
  const { model, optimizer } = built;
  if (initFrom) console.error(await initFrom.load(model, built.weights));
  const trainer = new Trainer(rt, model, optimizer, cfg);
  const lossOpts = () => trainer.lossOptions(Math.max(1, optimizer.step));
  const validate = () => evaluate(rt, model, data.valid.batches(cfg.schedule.microBatch), lossOpts(), cfg.logging.validBatches, cfg.precision.activations);

  let start = 0;
  if (pick) {
    for (const x of pick.skipped) console.error(`[resume] skipped ${x.name}: ${x.reason}`);
    for (const l of changes) console.error(l);
    const state = await loadCheckpoint(pick.dir, { params: model.params, weights: built.weights, optimizerState: built.slots() }).catch(async (e: unknown) => {
      if (e instanceof CheckpointError) throw new CheckpointError(e.file, e.problem, `${e.fix}; checkpoints here: ${await availableSteps(paths.checkpoints)}`);
      throw e;
    });
    start = state.step;
    optimizer.step = Number(state.optimizer?.step ?? state.step);
    const ls = state.optimizer?.lossScale;
    if (trainer.scaler && ls && typeof ls === 'object' && !Array.isArray(ls)) trainer.scaler.restore(ls as { scale?: number; goodSteps?: number });
    data.train.restore(state.dataLoader);
    s.reference = savedReference(state.metrics);
    const total = cfg.schedule.steps;
    if (start >= total) {
      console.error(`[resume] ${show(pick.dir)} is at step ${start}, and schedule.steps is ${total}: nothing to train`);
      return {
        outcome: 'finished',
        steps: start,
        validBefore: null,
        validAfter: null,
        last: null,
        skippedSteps: 0,
        overflowSteps: 0,
        reference: s.reference,
        metricsPath: paths.metrics,
      };
    }
    if (opts.stopAfter !== undefined && opts.stopAfter <= start)
      throw new ConfigError(
        `--stop-after ${opts.stopAfter}: the run resumes after step ${start}, so it would stop before training. Pass a later step (${start + 1}..${total - 1}) or leave --stop-after out`,
      );
    if (!DIVERGED_RE.test(basename(pick.dir))) s.lastGood = pick.dir;
  }
  notStopped();
  return { rt, data, built, trainer, here, overwrite, pick, start, validate };
}

/** Narrow prepare's answer: a run to train, or the result of one that had already finished. */
export function isFinished(p: Prepared | RunResult): p is RunResult {
  return 'outcome' in p;
}
