/** Global-norm gradient clipping, measured and applied on the GPU. */
import { sumSquaresMany } from '../kernels/reduce.ts';
import { clipCoefficient } from '../kernels/adamw.ts';
import type { Tensor } from '../kernels/tensor.ts';

/**
 * [norm, coef, clipped fraction, nonFinite, gradScale] (see kernels/adamw.ts CLIP) for all
 * gradients. With `scaleState` (the GPU train state, train-state.ts) they carry its loss scale,
 * and the norm and the clip are of the unscaled gradients. With maxNorm 0 (clipping off) the
 * coefficient is 1 but the norm is still measured.
 */
export function globalNormClip(grads: readonly Tensor[], maxNorm: number, scaleState?: Tensor): Tensor {
  const sumSq = sumSquaresMany(grads);
  // 3e38 ~ f32 max: the coefficient is then exactly 1 (no clipping) while the norm is still reported.
  const out = clipCoefficient(sumSq, maxNorm > 0 ? maxNorm : 3e38, 1, scaleState);
  sumSq.dispose();
  return out;
}
