/**
 * What a run adds to header.json for the diagnosis, from its config and data: one call for
 * train.js (commit.ts) and the browser trainer (src/web/run.ts). No Node built-in: the page bundles it.
 */
import { diagnosisHeaderFields } from '../../diagnose/index.ts';
import type { TrainConfig } from '../config.ts';
import type { LoadedData } from '../data/prepare.ts';

/** The first `n` items of an iterable (0 or less: all of them). */
function* take<T>(items: Iterable<T>, n: number): Generator<T> {
  let i = 0;
  for (const x of items) {
    if (n > 0 && i++ >= n) return;
    yield x;
  }
}

/** The no-information loss on the batches the first validation reads, and the data's statistics. */
export function runDiagnosisFields(cfg: TrainConfig, data: LoadedData): ReturnType<typeof diagnosisHeaderFields> {
  const m = cfg.model;
  return diagnosisHeaderFields({
    task: m.task,
    numClasses: m.numClasses,
    horizons: m.horizons,
    huberDelta: cfg.loss.huberDelta,
    normalize: cfg.data.normalize,
    report: data.report,
    validBatches: () => take(data.valid.batches(cfg.schedule.microBatch), cfg.logging.validBatches),
    train: data.train,
  });
}
