/** A Time-MoE model built from a PyTorch golden fixture (scripts/golden/): its config, in PyTorch's names, and its weights. */
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { modelConfig } from '../../src/model/config.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { loadStateDict, type StateDict } from '../../src/model/state-dict.ts';

export interface GoldenConfig {
  hidden: number;
  layers: number;
  heads: number;
  experts: number;
  top_k: number;
  moe_intermediate: number;
  shared_intermediate: number;
  horizons: number[];
  rope_theta: number;
  rms_eps: number;
}

export function goldenModel(rt: DawnRuntime, c: GoldenConfig, params: Record<string, { shape: number[]; data: number[] }>): TimeMoeModel {
  const cfg = modelConfig({
    hidden: c.hidden,
    layers: c.layers,
    heads: c.heads,
    experts: c.experts,
    topK: c.top_k,
    moeIntermediate: c.moe_intermediate,
    sharedIntermediate: c.shared_intermediate,
    horizons: c.horizons,
    ropeTheta: c.rope_theta,
    rmsEps: c.rms_eps,
  });
  const model = new TimeMoeModel(rt, cfg, 1);
  const dict: StateDict = new Map(Object.entries(params).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
  loadStateDict(model.params, dict);
  return model;
}
