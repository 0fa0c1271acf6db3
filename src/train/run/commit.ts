/**
 * The second phase of a run: every check passed, and from here on the run writes its folder.
 * In this order: plan.txt, the previous run set aside (--overwrite), the metrics header; then for
 * a resume the checkpoints and metrics lines after its step set aside and `latest` re-pointed,
 * for a fresh run the validation before training; then the [model] line.
 */
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import type { TrainConfig } from '../config.ts';
import { DIVERGED_RE, pointLatest } from '../persist/checkpoint.ts';
import { formatPlan } from '../plan/format.ts';
import type { ValidMetrics } from '../step/evaluate.ts';
import { faultAt } from './faults.ts';
import { MetricsLog } from './metrics.ts';
import { setAside } from './run-dir.ts';
import { RunDiagnosis, observers } from './diagnosis.ts';
import { validLine, type Committed, type Prepared, type Session } from './session.ts';
import { runDiagnosisFields } from './header-fields.ts';

/** What optim.freeze / optim.lora keep fixed and add, for the [model] line. */
function fineTuneLine(cfg: TrainConfig): string {
  const l = cfg.optim.lora;
  return [cfg.optim.freeze.length ? `frozen ${cfg.optim.freeze.join(', ')}` : '', l ? `LoRA rank ${l.rank} alpha ${l.alpha} on ${l.targets.join(', ')}` : '']
    .filter(Boolean)
    .join('; ');
}

export async function commit(s: Session, p: Prepared): Promise<Committed> {
  const { cfg, opts, paths, show, plan } = s;
  const { rt, built, here, overwrite, pick, start, validate } = p;
  const { model } = built;
  s.committed = true;
  writeFileAtomic(paths.plan, formatPlan(plan), { action: 'write', beforeWrite: faultAt('plan.txt') });
  if (overwrite.length) {
    const to = setAside(
      paths,
      'overwritten',
      overwrite.map((f) => join(paths.dir, f)),
    );
    console.error(`[overwrite] the previous run in ${show(paths.dir)} was moved to ${show(to)} (nothing deleted)`);
  }
  const diagnosis = new RunDiagnosis(paths.findings, show(paths.dir));
  const metrics = new MetricsLog(paths.metrics, observers(opts.observer, diagnosis));
  // What the diagnosis compares with: the no-information loss on the batches the first validation
  // reads, and the data's statistics (constant windows, extreme values, window counts).
  const fields = runDiagnosisFields(cfg, p.data);
  metrics.describe(paths.header, {
    config: cfg,
    parameters: model.parameterCount,
    plan: formatPlan(plan),
    adapter: rt.caps.adapter,
    startStep: start,
    startedAt: new Date().toISOString(),
    ...fields,
  });
  let validBefore: ValidMetrics | null = null;
  if (pick) {
    if (pick.newer.length) {
      const tail = metrics.linesAfter(start);
      const to = setAside(paths, `after-step-${start}`, pick.newer, tail ? { name: 'metrics-after-step.jsonl', text: tail } : undefined);
      console.error(`[resume] checkpoints after step ${start} moved to ${show(to)} (not deleted)${tail ? ', with the metrics lines of those steps' : ''}`);
    }
    // `latest` must not name a folder just moved aside; it names what the run continues from (or nothing).
    if (pick.latestMoves)
      await pointLatest(paths.checkpoints, dirname(pick.dir) === paths.checkpoints && !DIVERGED_RE.test(basename(pick.dir)) ? basename(pick.dir) : null);
    metrics.truncateAfter(start);
    console.error(`[resume] ${show(pick.dir)}: continuing after step ${start}`);
  } else {
    metrics.truncateAfter(-1);
    validBefore = await validate();
    s.reference = validBefore.windows > 0 ? validBefore.loss : null;
    console.error(validLine('[valid] before training', validBefore));
    metrics.write({ kind: 'valid', step: 0, ...validBefore });
  }
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.error(
    `[model] ${model.parameterCount.toLocaleString()} parameters${built.trainable.length < model.params.length ? ` (${built.trainable.reduce((a, q) => a + q.data.size, 0).toLocaleString()} trainable: ${fineTuneLine(cfg)})` : ''}; planned peak ${mib(here.peakBytes)} on this device (${rt.caps.family} kernels)` +
      `${opts.target.name === 'this' ? '' : `, ${mib(plan.peakBytes)} of ${(plan.budget.totalBytes / 2 ** 30).toFixed(1)} GiB on ${opts.target.name}`}`,
  );
  return { ...p, metrics, validBefore, diagnosis };
}
