/**
 * Validation in a no-grad graph: the training loss (task loss + aux terms), and per task either
 * MSE / MAE per horizon on the normalised scale (forecasting) or accuracy (classification).
 */
import type { Backend } from '../../kernels/tensor.ts';
import { Graph } from '../../autograd/graph.ts';
import { Var } from '../../autograd/variable.ts';
import type { TimeMoeModel } from '../../model/time-moe.ts';
import type { LossOptions } from '../../model/losses.ts';
import { taskLoss, uploadBatch, type Batch } from './batch.ts';

export interface ValidMetrics {
  loss: number;
  /** Huber (forecasting) or cross-entropy (classification), without aux terms. */
  lossMain: number;
  /** Forecasting, per horizon: mean squared and absolute error over valid targets. */
  horizons: { horizon: number; mse: number; mae: number }[];
  /** Classification: fraction of windows whose argmax logit is the label. */
  accuracy?: number;
  windows: number;
}

export async function evaluate(
  rt: Backend,
  model: TimeMoeModel,
  batches: Iterable<Batch>,
  lossOpts: LossOptions,
  maxBatches = 0,
  activations: 'f32' | 'f16' = 'f32',
): Promise<ValidMetrics> {
  const H = model.cfg.task === 'forecast' ? model.cfg.horizons : [];
  const se = H.map(() => 0);
  const ae = H.map(() => 0);
  const cnt = H.map(() => 0);
  let loss = 0;
  let lossMain = 0;
  let n = 0;
  let windows = 0;
  let correct = 0;
  let labelled = 0;
  for (const b of batches) {
    if (maxBatches > 0 && n >= maxBatches) break;
    const g = new Graph(false);
    const dev = uploadBatch(rt, b, model);
    try {
      const x = g.adopt(new Var(dev.inputs, false, 'inputs'));
      const { out, terms } = g.run(() => {
        const out = model.forward(x, { batch: b.B, seqLen: b.T }, { activations });
        return { out, terms: taskLoss(out, dev, lossOpts) };
      });
      loss += (await terms.total.data.readF32())[0]!;
      lossMain += (await terms.main.data.readF32())[0]!;
      if (out.logits && b.classes) {
        const logits = await out.logits.data.readF32();
        const C = out.logits.shape[1]!;
        for (let r = 0; r < b.B; r++) {
          if (b.classes[r]! < 0) continue;
          let best = 0;
          for (let c = 1; c < C; c++) if (logits[r * C + c]! > logits[r * C + best]!) best = c;
          correct += best === b.classes[r] ? 1 : 0;
          labelled++;
        }
      }
      for (let i = 0; i < H.length; i++) {
        const [p, t, m] = (await rt.readMany([out.predictions[i]!.data, dev.targets()[i]!.target, dev.targets()[i]!.mask])) as Float32Array[];
        for (let j = 0; j < p.length; j++) {
          if (m[j] === 0) continue;
          const r = p[j]! - t[j]!;
          se[i]! += r * r;
          ae[i]! += Math.abs(r);
          cnt[i]!++;
        }
      }
    } finally {
      dev.dispose();
      g.dispose();
    }
    n++;
    windows += b.B;
  }
  return {
    loss: n ? loss / n : NaN,
    lossMain: n ? lossMain / n : NaN,
    horizons: H.map((h, i) => ({ horizon: h, mse: se[i]! / cnt[i]!, mae: ae[i]! / cnt[i]! })),
    ...(model.cfg.task === 'classify' ? { accuracy: labelled ? correct / labelled : NaN } : {}),
    windows,
  };
}
