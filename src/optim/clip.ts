/** Global-norm gradient clipping, measured and applied on the GPU. */
import { sumSquaresMany } from '../kernels/reduce.ts';
import { clipCoefficient } from '../kernels/adamw.ts';
import type { Tensor } from '../kernels/tensor.ts';

/**
 * [norm, coef, clipped fraction, nonFinite, gradScale] (see kernels/adamw.ts CLIP) for all
 * gradients, which carry the loss scale `lossScale` (1 without scaling): the norm and the clip
 * are of the unscaled gradients. With maxNorm 0 (clipping off) the coefficient is 1 but the norm
 * is still measured.
 */
export function globalNormClip(grads: readonly Tensor[], maxNorm: number, lossScale: number | Tensor = 1): Tensor {
  const sumSq = sumSquaresMany(grads);
  // 3e38 ~ f32 max: the coefficient is then exactly 1 (no clipping) while the norm is still reported.
  // A Tensor scale is the GPU train state (train-state.ts): the scale is read there.
  const out = typeof lossScale === 'number' ? clipCoefficient(sumSq, maxNorm > 0 ? maxNorm : 3e38, 1 / lossScale) : clipCoefficient(sumSq, maxNorm > 0 ? maxNorm : 3e38, 1, lossScale);
  sumSq.dispose();
  return out;
}
