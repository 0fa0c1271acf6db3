/**
 * Workloads shared by the training benchmarks (bench/train.bench.ts) and the GPU check
 * (bench/gpu/check.ts): a synthetic batch, and our config as the PyTorch reference's dict.
 */
import type { TrainConfig } from '../src/train/config.ts';
import type { Batch } from '../src/train/step/batch.ts';
import { Rng } from '../src/util/rng.ts';

/** B rows of T+1 points of a standardised random walk: inputs s[0..T), labels s[1..T], mask 1. */
export function syntheticBatch(B: number, T: number, seed: number): Batch {
  const rng = new Rng(seed);
  const inputs = new Float32Array(B * T);
  const labels = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const s = new Float64Array(T + 1);
    for (let t = 1; t <= T; t++) s[t] = s[t - 1]! + rng.normal();
    const mean = s.reduce((a, v) => a + v, 0) / s.length;
    const std = Math.sqrt(s.reduce((a, v) => a + (v - mean) ** 2, 0) / s.length) || 1;
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = (s[t]! - mean) / std;
      labels[b * T + t] = (s[t + 1]! - mean) / std;
    }
  }
  return { inputs, labels, mask: new Float32Array(B * T).fill(1), B, T };
}

/** The TimeMoeRef config dict of our model config (scripts/golden/timemoe_ref.py keys). */
export function torchConfig(cfg: TrainConfig): string {
  const m = cfg.model;
  return JSON.stringify({
    hidden: m.hidden,
    layers: m.layers,
    heads: m.heads,
    experts: m.experts,
    top_k: m.topK,
    moe_intermediate: m.moeIntermediate,
    shared_intermediate: m.sharedIntermediate,
    horizons: m.horizons,
    rope_theta: m.ropeTheta,
    rms_eps: m.rmsEps,
    aux_factor: cfg.loss.auxFactor,
    z_coef: cfg.loss.zCoef,
    huber_delta: cfg.loss.huberDelta,
  });
}
