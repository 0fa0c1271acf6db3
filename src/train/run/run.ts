/**
 * A training run: plan -> lock -> prepare (every check: run folder, resume point, data, device,
 * checkpoint) -> commit (the first writes to the run folder) -> loop (the steps, metrics,
 * validation, checkpoints, stops) -> finish (final validation, verdict, final checkpoint), with
 * resume, the stop signals (signals.ts), a lost GPU device (device-lost.ts), the non-finite stop
 * rule and the divergence verdict.
 * Everything the CLI does after parsing flags. Nothing is written to the run folder until every
 * check has passed. The phases are in prepare.ts, commit.ts, loop.ts and finish.ts; what they
 * share is in session.ts.
 */
import { ConfigError, type TrainConfig } from '../config.ts';
import { IoError } from '../../util/atomic-write.ts';
import { EXIT } from '../exit-codes.ts';
import { planRun, type MemoryPlan } from '../plan/planner.ts';
import { formatPlan } from '../plan/format.ts';
import type { TargetProfile } from '../plan/targets.ts';
import { totalmem } from 'node:os';
import type { DawnRuntime } from '../../kernels/runtime.ts';
import { commit } from './commit.ts';
import { deviceLoss, deviceLostStop } from './device-lost.ts';
import { finish } from './finish.ts';
import { loop } from './loop.ts';
import { isFinished, prepare } from './prepare.ts';
import { RunLock, runPaths, shownPath } from './run-dir.ts';
import { RunStopped, type Committed, type RunOptions, type RunResult, type Session } from './session.ts';
import { StopRequests } from './signals.ts';

export { RunStopped, type RunOptions, type RunResult };

export function planFor(cfg: TrainConfig, target: TargetProfile, budgetBytes?: number, hostBytes?: number): MemoryPlan {
  // An offloaded optimizer's host side is checked against this machine's RAM unless --host-gb says otherwise.
  return planRun(cfg, { target, budgetBytes, hostBytes: hostBytes ?? totalmem(), hostFrom: hostBytes === undefined ? 'this machine' : '--host-gb' });
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const paths = runPaths(opts.cwd, cfg.logging.dir);
  const show = (p: string) => shownPath(p, opts.cwd);

  // Plan before allocating anything on the device.
  const plan = planFor(cfg, opts.target, opts.budgetBytes, opts.hostBytes);
  // Both verdicts: the device, and the host RAM of this machine (or --host-gb) for an offloaded optimizer.
  if (!plan.deviceFits) throw new ConfigError(`the run does not fit ${opts.target.name}:\n${formatPlan(plan)}`);
  if (plan.hostFits === false)
    throw new ConfigError(
      `the offloaded optimizer does not fit the host memory (${plan.host?.availableFrom === '--host-gb' ? '--host-gb' : "this machine's RAM"}):\n${formatPlan(plan)}`,
    );

  // The checks: each may refuse the run, and none writes to the run folder (the lock aside).
  const lock = RunLock.acquire(paths, opts.cwd, (l) => console.error(l));
  const stops = new StopRequests(() => lock.release());
  const s: Session = { cfg, opts, paths, show, plan, stops, committed: false, lastGood: null, reference: null, diverged: null };
  let committed: Committed | null = null;
  let rt: DawnRuntime | null = null;
  // Where a lost device is reported to have been lost (the loop names its own step).
  let when = 'before training started';
  try {
    const prepared = await prepare(s);
    if (isFinished(prepared)) return prepared;
    rt = prepared.rt;
    // Commit: every check passed. From here on the run writes its folder.
    when = 'during the validation before training';
    committed = await commit(s, prepared);
    when = 'during training';
    const end = await loop(s, committed);
    if ('stopped' in end) return end.stopped;
    when = `after the last step (${cfg.schedule.steps}), during the final validation and checkpoint`;
    return await finish(s, committed, end);
  } catch (e) {
    if (s.committed && !(e instanceof RunStopped) && !(e instanceof IoError)) {
      const lost = await deviceLoss(rt, e);
      if (lost) throw deviceLostStop(s, lost, when);
    }
    // Disk full or another I/O failure once the run is writing: say what is safe and how to go on.
    if (s.committed && e instanceof IoError)
      throw new RunStopped(
        `${e.message}. Nothing half-written is left behind (temp files removed); ${s.lastGood ? `the last good checkpoint, ${show(s.lastGood)}, is intact: after freeing space, continue with --resume` : 'no checkpoint was saved yet: after freeing space, start again with --overwrite'}`,
        EXIT.stopped,
      );
    throw e;
  } finally {
    // However the run ended, what the diagnosis found is said once, before the last line.
    const summary = committed?.diagnosis.summary();
    if (summary) console.error(summary.replace(/^diagnosis:/, '[diagnose] summary:'));
    stops.dispose();
    lock.release(!s.committed);
  }
}
