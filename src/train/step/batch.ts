/** A training batch on the host, its upload as model inputs and targets, and the task's loss. */
import type { Backend } from '../../kernels/tensor.ts';
import type { Tensor } from '../../kernels/tensor.ts';
import { horizonTargets } from '../../kernels/loss.ts';
import { classificationLoss, forecastLoss, type HorizonTarget, type LossOptions, type LossTerms } from '../../model/losses.ts';
import type { ModelOutput, TimeMoeModel } from '../../model/time-moe.ts';
import type { Batch as DataBatch } from '../data/windows.ts';

/** What the model needs of a data batch (src/train/data/windows.ts makes them). */
export type Batch = Pick<DataBatch, 'inputs' | 'labels' | 'mask' | 'B' | 'T'> & { classes?: Int32Array };

export interface DeviceBatch {
  /** [B*T, 1]; ownership passes to whoever wraps it in a Var (the graph frees it). */
  inputs: Tensor;
  /** Forecasting: targets per horizon, built on the GPU on first use (a kernel, recorded in order). */
  targets(): HorizonTarget[];
  /** Classification: [B] i32 class ids (-1 = ignore). */
  classes: Tensor | null;
  /** Frees targets, labels and classes. */
  dispose(): void;
}

/**
 * Upload a batch: host writes only, no kernels, so a step can upload all its micro-batches before
 * recording anything (a host write after recorded work forces an extra submit).
 */
export function uploadBatch(rt: Backend, b: Batch, model: TimeMoeModel): DeviceBatch {
  const N = b.B * b.T;
  const inputs = rt.upload(b.inputs, [N, 1], 'f32', 'batch.inputs');
  const classify = model.cfg.task === 'classify';
  if (classify && !b.classes) throw new Error('classification needs class labels: use a labelled data source (e.g. data.source.kind "synthetic-classes")');
  const classes = classify ? rt.upload(b.classes!, [b.B], 'i32', 'batch.classes') : null;
  let labels: Tensor | null = classify ? null : rt.upload(b.labels, [b.B, b.T], 'f32', 'batch.labels');
  let mask: Tensor | null = classify ? null : rt.upload(b.mask, [b.B, b.T], 'f32', 'batch.mask');
  let targets: HorizonTarget[] | null = null;
  return {
    inputs,
    classes,
    targets() {
      if (!targets) {
        targets =
          labels && mask
            ? model.cfg.horizons.map((h) => {
                const t = horizonTargets(labels!, mask!, h);
                return { target: t.target.reshape([N, h]), mask: t.mask.reshape([N, h]) };
              })
            : [];
        labels?.dispose();
        mask?.dispose();
        labels = mask = null;
      }
      return targets;
    },
    dispose() {
      for (const t of targets ?? []) {
        t.target.dispose();
        t.mask.dispose();
      }
      labels?.dispose();
      mask?.dispose();
      classes?.dispose();
    },
  };
}

/** The task's loss: forecasting heads (Huber) or the classifier (cross-entropy), plus aux and z. */
export function taskLoss(out: ModelOutput, dev: DeviceBatch, o: LossOptions): LossTerms {
  return dev.classes ? classificationLoss(out, dev.classes, o) : forecastLoss(out, dev.targets(), o);
}
