/**
 * Top-k router (Time-MoE / Qwen2-MoE): probs = softmax(logits) in f32, the k most probable
 * experts per token (ties -> lower expert index), weights = their probabilities, renormalised
 * to sum 1 only when asked (Time-MoE does not; Mixtral does). Backward takes d_weights, plus an
 * optional additive d_probs from a balancing loss, and returns d_logits in one kernel.
 */
import type { Tensor } from './tensor.ts';
import { foldedGrid } from './grid.ts';

export interface RouterOptions {
  /** Experts per token (default 2). */
  k?: number;
  /** Renormalise the k weights to sum 1 (default false, the Time-MoE convention). */
  renormalize?: boolean;
}

export interface RouterOutput {
  /** [N, E] f32 softmax of the logits; saved for backward and the balancing losses. */
  probs: Tensor;
  /** [N, k] u32 picked experts, most probable first. */
  idx: Tensor;
  /** [N, k] f32 routing weights. */
  weights: Tensor;
}

/** Largest expert count: the picked set is a 64-bit mask in the shader. */
export const MAX_EXPERTS = 64;

export { foldedGrid } from './grid.ts';

function dims(logits: Tensor): [number, number] {
  if (logits.shape.length !== 2) throw new Error(`router: logits must be [N, E], got ${logits}`);
  const [n, e] = logits.shape as [number, number];
  if (e < 1 || e > MAX_EXPERTS) throw new Error(`router: ${e} experts; supported 1..${MAX_EXPERTS}`);
  return [n, e];
}

export function routerTopK(logits: Tensor, opts: RouterOptions = {}): RouterOutput {
  const rt = logits.rt;
  const [n, e] = dims(logits);
  const k = opts.k ?? 2;
  if (!Number.isInteger(k) || k < 1 || k > e) throw new Error(`router: k=${k} must be in 1..${e}`);
  if (logits.dtype !== 'f32') throw new Error(`router: logits must be f32 (router softmax stays f32), got ${logits.dtype}`);
  const probs = rt.empty([n, e], 'f32', 'router.probs');
  const idx = rt.empty([n, k], 'u32', 'router.idx');
  const weights = rt.empty([n, k], 'f32', 'router.weights');
  const kern = rt.kernel({ shader: 'router', entry: 'forward', params: { EXTRA: '0.0' }, constants: { RENORM: opts.renormalize ? 1 : 0 } });
  rt.dispatch(kern, [logits, probs, idx, weights], foldedGrid(n, 64), new Uint32Array([n, e, k, 0]));
  return { probs, idx, weights };
}

export interface RouterBackwardOptions {
  /** Must match the forward. */
  renormalize?: boolean;
  /** [N, E] gradient w.r.t. probs from elsewhere (a balancing loss), added before the softmax backward. */
  dProbsExtra?: Tensor;
}

/**
 * d_logits [N, E] from d_weights [N, k] (and optionally an additive d_probs [N, E]).
 * The selection itself is piecewise constant, so gradient reaches only the picked probs,
 * then flows through the softmax to every logit.
 */
export function routerTopKBackward(probs: Tensor, idx: Tensor, dWeights: Tensor, opts: RouterBackwardOptions = {}): Tensor {
  const rt = probs.rt;
  const [n, e] = dims(probs);
  const k = idx.shape[1] ?? 0;
  if (idx.shape[0] !== n || dWeights.shape[0] !== n || dWeights.shape[1] !== k) {
    throw new Error(`router backward: shapes ${probs}, ${idx}, ${dWeights} disagree`);
  }
  const extra = opts.dProbsExtra;
  if (extra && (extra.shape[0] !== n || extra.shape[1] !== e)) throw new Error(`router backward: dProbsExtra ${extra} is not [${n}, ${e}]`);
  const dLogits = rt.empty([n, e], 'f32', 'router.d_logits');
  const kern = rt.kernel({
    shader: 'router',
    entry: 'backward',
    params: { EXTRA: extra ? 'dprobs_extra[i]' : '0.0' },
    constants: { RENORM: opts.renormalize ? 1 : 0 },
  });
  const bindings = extra ? [probs, idx, dWeights, dLogits, extra] : [probs, idx, dWeights, dLogits];
  rt.dispatch(kern, bindings, foldedGrid(n, 64), new Uint32Array([n, e, k, 0]));
  return dLogits;
}
