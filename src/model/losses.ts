/**
 * Training losses. Forecasting: mean over heads of masked Huber (delta 2.0) + auxFactor * aux +
 * zCoef * z. Classification: cross-entropy + auxFactor * aux + zCoef * z.
 *
 * Aux convention: `pooled` is the HF / Time-MoE load_balancing_loss_func (router logits of all
 * layers pooled; balanced = k); `switch` is the mean over layers of the per-layer Switch loss
 * E * Σ f_i P_i (balanced = 1). Per-layer statistics are reported separately by the metrics,
 * because pooling hides per-layer collapse (docs/DESIGN.md §6).
 */
import type { Var } from '../autograd/variable.ts';
import type { Tensor } from '../kernels/tensor.ts';
import { crossEntropyLoss, huberLoss, pooledAuxLoss, switchAuxLoss, weightedSum, zLoss } from '../autograd/ops/loss.ts';
import type { ModelOutput } from './time-moe.ts';

export type AuxConvention = 'pooled' | 'switch';

export interface LossOptions {
  auxFactor: number;
  auxConvention: AuxConvention;
  zCoef: number;
  experts: number;
  topK: number;
  huberDelta: number;
}

export interface HorizonTarget {
  /** [B*T, h] future values (0 where the future runs past the series). */
  target: Tensor;
  /** [B*T, h] 1 where the target is valid. */
  mask: Tensor;
}

export interface LossTerms {
  total: Var;
  /** Main loss: mean over heads (forecast) or cross-entropy (classify). */
  main: Var;
  headLosses: Var[];
  aux: Var;
  z: Var;
}

function routerTerms(out: ModelOutput, o: LossOptions): { aux: Var; z: Var } {
  const layers = out.routing.map((r) => ({ probs: r.probs, idx: r.idx }));
  const aux = o.auxConvention === 'pooled' ? pooledAuxLoss(layers) : switchAuxLoss(layers);
  // Every layer routes the same N tokens, so the mean over all L*N tokens is the mean of layer means.
  const z = weightedSum(
    out.routing.map((r) => zLoss(r.logits)),
    out.routing.map(() => 1 / out.routing.length),
  );
  return { aux, z };
}

export function forecastLoss(out: ModelOutput, targets: readonly HorizonTarget[], o: LossOptions): LossTerms {
  if (targets.length !== out.predictions.length) throw new Error(`${targets.length} targets for ${out.predictions.length} heads`);
  const headLosses = out.predictions.map((p, n) => huberLoss(p, targets[n]!.target, targets[n]!.mask, o.huberDelta));
  const main = weightedSum(
    headLosses,
    headLosses.map(() => 1 / headLosses.length),
  );
  const { aux, z } = routerTerms(out, o);
  const total = weightedSum([main, aux, z], [1, o.auxFactor, o.zCoef]);
  return { total, main, headLosses, aux, z };
}

export function classificationLoss(out: ModelOutput, labels: Tensor, o: LossOptions): LossTerms {
  if (!out.logits) throw new Error('classificationLoss needs a classifier model');
  const main = crossEntropyLoss(out.logits, labels);
  const { aux, z } = routerTerms(out, o);
  const total = weightedSum([main, aux, z], [1, o.auxFactor, o.zCoef]);
  return { total, main, headLosses: [main], aux, z };
}
