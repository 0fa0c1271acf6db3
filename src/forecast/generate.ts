/**
 * Autoregressive forecasting as Time-MoE's generate does it (TimeMoeForPrediction.forward with
 * max_horizon_length, then TSGenerationMixin): run the model on the whole sequence, take the
 * last position's prediction from the head chosen for the points still wanted, append them to
 * the sequence, and repeat until the horizon is covered. The sequence grows (it is not slid), and
 * the values stay on the scale of the context's normalisation throughout.
 */
import { Graph } from '../autograd/graph.ts';
import { Var } from '../autograd/variable.ts';
import type { Backend } from '../kernels/tensor.ts';
import type { TimeMoeModel } from '../model/time-moe.ts';

/**
 * The head Time-MoE uses when `remaining` points are still wanted: the last head, in config
 * order, before the first one longer than `remaining` (the first head if even it is longer), and
 * how many of its points are taken.
 */
export function headFor(horizons: readonly number[], remaining: number): { index: number; take: number } {
  let index = 0;
  for (let i = 1; i < horizons.length; i++) {
    if (horizons[i]! > remaining) break;
    index = i;
  }
  return { index, take: Math.min(horizons[index]!, remaining) };
}

/** The heads (by horizon) that forecasting `horizon` points runs, in order. */
export function generationPlan(horizons: readonly number[], horizon: number): number[] {
  const steps: number[] = [];
  for (let done = 0; done < horizon;) {
    const { index, take } = headFor(horizons, horizon - done);
    steps.push(horizons[index]!);
    done += take;
  }
  return steps;
}

export interface GenerateOptions {
  /** Sequences per forward pass (bounds device memory). */
  batch?: number;
  activations?: 'f32' | 'f16';
}

/**
 * Forecast `horizon` points after each context (all of one length, normalised). Returns the
 * forecasts on the same normalised scale, one Float32Array per context.
 */
export async function generate(
  rt: Backend,
  model: TimeMoeModel,
  contexts: readonly Float32Array[],
  horizon: number,
  opts: GenerateOptions = {},
): Promise<Float32Array[]> {
  if (model.cfg.task !== 'forecast') throw new Error('generate needs a forecasting model (model.task "forecast")');
  const batch = opts.batch ?? 32;
  const out: Float32Array[] = [];
  for (let first = 0; first < contexts.length; first += batch) {
    const rows = contexts.slice(first, first + batch);
    out.push(...(await generateBatch(rt, model, rows, horizon, opts.activations ?? 'f32')));
  }
  return out;
}

async function generateBatch(
  rt: Backend,
  model: TimeMoeModel,
  contexts: readonly Float32Array[],
  horizon: number,
  activations: 'f32' | 'f16',
): Promise<Float32Array[]> {
  const B = contexts.length;
  const T = contexts[0]!.length;
  if (contexts.some((c) => c.length !== T)) throw new Error('generate: every context must have the same length');
  const horizons = model.cfg.horizons;
  const forecasts = contexts.map(() => new Float32Array(horizon));
  let L = T;
  let seq = new Float32Array(B * L);
  contexts.forEach((c, b) => seq.set(c, b * L));
  for (let done = 0; done < horizon;) {
    const { index, take } = headFor(horizons, horizon - done);
    const h = horizons[index]!;
    const g = new Graph(false);
    let pred: Float32Array;
    try {
      const x = g.adopt(new Var(rt.upload(seq, [B * L, 1], 'f32', 'forecast.inputs'), false, 'inputs'));
      const o = g.run(() => model.forward(x, { batch: B, seqLen: L }, { activations }));
      pred = (await o.predictions[index]!.data.readF32()) as Float32Array;
    } finally {
      g.dispose();
    }
    // Prediction rows are [B*L, h]; the last position of sequence b is row b*L + L-1.
    const next = new Float32Array(B * (L + take));
    for (let b = 0; b < B; b++) {
      const p = pred.subarray((b * L + L - 1) * h, (b * L + L - 1) * h + take);
      forecasts[b]!.set(p, done);
      next.set(seq.subarray(b * L, (b + 1) * L), b * (L + take));
      next.set(p, b * (L + take) + L);
    }
    seq = next;
    L += take;
    done += take;
  }
  return forecasts;
}
