/**
 * The run's checkpoints: `step-N`, or `diverged-step-N` (never marked latest) while the validation
 * loss has diverged; what their state.json holds to resume exactly; the test-only disk-full points.
 */
import { saveCheckpoint, type CheckpointProgress } from '../persist/checkpoint.ts';
import { injectFault } from './faults.ts';
import type { Committed, Session } from './session.ts';

/** Save the state after `step` (GPU work finished first) and return its folder; a good one becomes s.lastGood. */
export async function saveRun(s: Session, c: Committed, step: number): Promise<string> {
  const { cfg, paths } = s;
  const { rt, built, trainer, data } = c;
  const { model, optimizer } = built;
  await rt.sync();
  const name = s.diverged ? `diverged-step-${step}` : `step-${step}`;
  const saved = await saveCheckpoint(
    paths.checkpoints,
    {
      params: model.params,
      weights: built.weights,
      optimizerState: built.slots(),
      state: {
        step,
        optimizer: { step: optimizer.step, ...(trainer.scaler ? { lossScale: { ...trainer.scaler.state() } } : {}) },
        dataLoader: data.train.state(),
        config: cfg,
        metrics: { validBefore: s.reference },
      },
    },
    { keep: cfg.checkpoint.keep, name, latest: !s.diverged, onProgress: checkpointFaults(name) },
  );
  if (!s.diverged) s.lastGood = saved.path;
  return saved.path;
}

/** Test-only disk-full points (faults.ts): one per checkpoint file and one before `latest` moves. */
function checkpointFaults(name: string): (e: CheckpointProgress) => void {
  return (e) => {
    if (e.phase === 'writing' && e.file) injectFault(`checkpoint:${name}:${e.file}`);
    if (e.phase === 'state-written') injectFault(`checkpoint:${name}:state.json`);
    if (e.phase === 'renamed') injectFault(`checkpoint:${name}:latest`);
  };
}
