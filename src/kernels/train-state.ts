/**
 * GPU-resident training state (shaders/train-state.wgsl): the AdamW step count and the loss scale
 * live on the GPU, so a step can be recorded before the previous step's metrics were read back
 * (logging.metricsEvery > 1) and bias correction and loss scaling stay exact when a step is skipped.
 */
import type { Tensor, Backend } from './tensor.ts';

/** Layout of the state tensor (f32 [4]). */
export const STATE = { adamStep: 0, lossScale: 1, goodSteps: 2, event: 3 } as const;
/** state[STATE.event] codes. */
export const SCALE_EVENTS = ['none', 'grew', 'overflow', 'overflow-at-min'] as const;
/** What the loss scaler did after a step. */
export type ScaleEvent = (typeof SCALE_EVENTS)[number];

export interface HostTrainState {
  adamStep: number;
  lossScale: number;
  goodSteps: number;
}

export function createTrainState(rt: Backend, s: HostTrainState): Tensor {
  return rt.upload([s.adamStep, s.lossScale, s.goodSteps, 0], [4], 'f32', 'train state');
}

function check(state: Tensor): void {
  if (state.dtype !== 'f32' || state.size !== 4) throw new Error(`train state ${state} must be f32 [4]`);
}

function params(a: number, b: number, c: number, scaling = 0, interval = 0) {
  return { a, b, c, scaling, interval };
}

/** [lr / (1 - beta1^t), sqrt(1 - beta2^t)] for the next update t = adamStep + 1 (AdamW's scalars). */
export function adamScalars(state: Tensor, o: { lr: number; beta1: number; beta2: number }): Tensor {
  check(state);
  const rt = state.rt;
  const out = rt.empty([2], 'f32', 'adam scalars');
  // ln(beta) in float64 on the host, rounded once.
  rt.dispatch(rt.kernel({ shader: 'train-state', entry: 'adam_scalars' }), { state, out }, [1], params(o.lr, Math.log(o.beta1), Math.log(o.beta2)));
  return out;
}

/** The backward's seed: lossScale / accumulation. */
export function lossSeed(state: Tensor, accumulation: number): Tensor {
  check(state);
  const rt = state.rt;
  const out = rt.empty([1], 'f32', 'loss seed');
  rt.dispatch(rt.kernel({ shader: 'train-state', entry: 'loss_seed' }), { state, out }, [1], params(1 / accumulation, 0, 0));
  return out;
}

export interface ScaleOptions {
  minScale: number;
  maxScale: number;
  growthInterval: number;
}

/**
 * After the update: adamStep += 1 unless `guardFlag` (forward guards) or `normFlag` (non-finite
 * gradient norm) is set; with `scaling`, the loss-scale update of src/optim/loss-scale.ts
 * (reference model: test/reference/train-state-ref.ts).
 */
export function stepEnd(state: Tensor, guardFlag: Tensor, normFlag: Tensor, scaling: ScaleOptions | null): void {
  check(state);
  const rt = state.rt;
  const p = scaling ? params(scaling.minScale, scaling.maxScale, 0, 1, scaling.growthInterval) : params(0, 0, 0, 0, 0);
  rt.dispatch(rt.kernel({ shader: 'train-state', entry: 'step_end' }), { state, guard_flag: guardFlag, norm_flag: normFlag }, [1], p);
}
