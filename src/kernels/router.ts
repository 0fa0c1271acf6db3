/**
 * Top-k router (Time-MoE / Qwen2-MoE): probs = softmax(logits) in f32, the k most probable
 * experts per token (ties -> lower expert index), weights = their probabilities, renormalised
 * to sum 1 only when asked (Time-MoE does not; Mixtral does). Backward takes d_weights, plus an
 * optional additive d_probs from a balancing loss, and returns d_logits in one kernel.
 * The engine routes with routerTopKCounts (the router plus the dispatch plan's per-chunk counts);
 * the plain router over the same route() of shaders/router.wgsl (entry `forward`) is a test oracle
 * and benchmark baseline, test/support/router-topk.ts.
 */
import type { Tensor, Backend } from './tensor.ts';
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

function dims(logits: Tensor): [number, number] {
  if (logits.shape.length !== 2) throw new Error(`router: logits must be [N, E], got ${logits}`);
  const [n, e] = logits.shape as [number, number];
  if (e < 1 || e > MAX_EXPERTS) throw new Error(`router: ${e} experts; supported 1..${MAX_EXPERTS}`);
  return [n, e];
}

/** [N, E, k] of a forward, checked. */
export function forwardDims(logits: Tensor, opts: RouterOptions): [number, number, number] {
  const [n, e] = dims(logits);
  const k = opts.k ?? 2;
  if (!Number.isInteger(k) || k < 1 || k > e) throw new Error(`router: k=${k} must be in 1..${e}`);
  if (logits.dtype !== 'f32') throw new Error(`router: logits must be f32 (router softmax stays f32), got ${logits.dtype}`);
  return [n, e, k];
}

/** probs [N, E], idx [N, k] and weights [N, k]. */
export function routerOutputs(rt: Backend, n: number, e: number, k: number): RouterOutput {
  return {
    probs: rt.empty([n, e], 'f32', 'router.probs'),
    idx: rt.empty([n, k], 'u32', 'router.idx'),
    weights: rt.empty([n, k], 'f32', 'router.weights'),
  };
}

/** Invocations per workgroup of forward_counts (the shader's CHUNK_WG override). */
export const CHUNK_WG = 8;

export interface RouterCountsOutput extends RouterOutput {
  /**
   * [E, chunks4] u32, chunks = ceil(N / chunkTokens) rounded up to a multiple of 4: pairs of each
   * chunk of tokens routed to each expert (expert-major; padding chunks count 0).
   */
  chunkCounts: Tensor;
}

/**
 * Shape of routerTopKCounts' chunkCounts: [E, chunks rounded up to a multiple of 4], at least one
 * vec4 even for N = 0 (the consumer binds it as array<vec4<u32>>, 16 bytes at the least).
 */
export function chunkCountsShape(n: number, e: number, chunkTokens: number): [number, number] {
  return [e, Math.max(4, Math.ceil(Math.ceil(n / chunkTokens) / 4) * 4)];
}

/**
 * The router (the plain router's probs, idx and weights, bit for bit) plus per-chunk expert histograms for
 * the dispatch plan, still one dispatch: one invocation per chunk of `chunkTokens` consecutive
 * tokens, routed in order, so the histogram needs no workgroup memory or barrier. Building block
 * of routeAndDispatch (dispatch.ts); the caller owns chunkCounts.
 */
export function routerTopKCounts(logits: Tensor, opts: RouterOptions, chunkTokens: number): RouterCountsOutput {
  const rt = logits.rt;
  const [n, e, k] = forwardDims(logits, opts);
  if (!Number.isInteger(chunkTokens) || chunkTokens < 1) throw new Error(`router: chunkTokens=${chunkTokens} must be a positive integer`);
  if (chunkTokens > Math.max(n, 1)) throw new Error(`router: chunkTokens=${chunkTokens} exceeds N=${n} (use N: one chunk)`);
  const { probs, idx, weights } = routerOutputs(rt, n, e, k);
  const shape = chunkCountsShape(n, e, chunkTokens);
  const chunks4 = shape[1];
  const chunkCounts = rt.empty(shape, 'u32', 'router.chunk_counts');
  const kern = rt.kernel({ shader: 'router', entry: 'forward_counts', params: { EXTRA: '0.0' }, constants: { RENORM: opts.renormalize ? 1 : 0, CHUNK_WG } });
  rt.dispatch(kern, { logits, probs, idx, weights, chunk_counts: chunkCounts }, foldedGrid(rt, chunks4, CHUNK_WG), { n, e, k, chunk: chunkTokens });
  return { probs, idx, weights, chunkCounts };
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
    constants: { RENORM: opts.renormalize ? 1 : 0, CHUNK_WG },
  });
  const bindings = { b_probs: probs, b_idx: idx, b_dw: dWeights, d_logits: dLogits, ...(extra ? { dprobs_extra: extra } : {}) };
  rt.dispatch(kern, bindings, foldedGrid(rt, n, 64), { n, e, k, chunk: 0 });
  return dLogits;
}
