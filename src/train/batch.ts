/** A training batch on the host and its upload as model inputs and horizon targets. */
import type { Runtime } from '../kernels/runtime.ts';
import type { Tensor } from '../kernels/tensor.ts';
import { horizonTargets } from '../kernels/loss.ts';
import type { HorizonTarget } from '../model/losses.ts';
import type { Batch as DataBatch } from './data/windows.ts';

/** What the model needs of a data batch (src/train/data/windows.ts makes them). */
export type Batch = Pick<DataBatch, 'inputs' | 'labels' | 'mask' | 'B' | 'T'>;

export interface DeviceBatch {
  inputs: Tensor;
  targets: HorizonTarget[];
  dispose(): void;
}

export function uploadBatch(rt: Runtime, b: Batch, horizons: readonly number[]): DeviceBatch {
  const N = b.B * b.T;
  const inputs = rt.upload(b.inputs, [N, 1], 'f32', 'batch.inputs');
  const labels = rt.upload(b.labels, [b.B, b.T], 'f32', 'batch.labels');
  const mask = rt.upload(b.mask, [b.B, b.T], 'f32', 'batch.mask');
  const targets = horizons.map((h) => {
    const t = horizonTargets(labels, mask, h);
    return { target: t.target.reshape([N, h]), mask: t.mask.reshape([N, h]) };
  });
  labels.dispose();
  mask.dispose();
  return {
    inputs,
    targets,
    dispose() {
      for (const t of targets) {
        t.target.dispose();
        t.mask.dispose();
      }
    },
  };
}
