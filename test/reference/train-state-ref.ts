/**
 * Reference model of the loss-scale update that shaders/train-state.wgsl step_end runs on the GPU
 * (src/optim/loss-scale.ts states the semantics), applied to a LossScaler's state.
 */
import type { LossScaler } from '../../src/optim/loss-scale.ts';
import type { ScaleEvent } from '../../src/kernels/train-state.ts';

/**
 * Update after a step. `gradOverflow`: the gradient norm was not finite; `forwardBad`: a forward
 * guard already named a non-finite activation or loss (not a scaling problem: scale untouched).
 */
export function lossScaleUpdate(s: LossScaler, gradOverflow: boolean, forwardBad: boolean): ScaleEvent {
  if (forwardBad) {
    s.goodSteps = 0;
    return 'none';
  }
  if (gradOverflow) {
    s.goodSteps = 0;
    if (s.scale <= s.opts.minScale) return 'overflow-at-min';
    s.scale = Math.max(s.opts.minScale, s.scale / 2);
    return 'overflow';
  }
  s.goodSteps++;
  if (s.goodSteps >= s.opts.growthInterval && s.scale < s.maxScale) {
    s.scale = Math.min(s.maxScale, s.scale * 2);
    s.goodSteps = 0;
    return 'grew';
  }
  return 'none';
}
