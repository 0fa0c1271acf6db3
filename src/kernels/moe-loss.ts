/**
 * MoE auxiliary losses and routing statistics, all as [1]/[E] GPU tensors (no readback).
 *
 * - switchLoss: per-layer Switch load balancing, E * Σ_i f_i P_i with f_i = picks_i / (N k),
 *   P_i = mean_t probs[t, i]. Balanced routing gives 1.
 * - pooledAuxLoss: the HF transformers / Time-MoE convention: all layers' tokens pooled,
 *   E * Σ_{j,i} tokens_per_expert[j, i] * router_prob[i] with tokens_per_expert the mean top-k
 *   one-hot mask [k, E] (not divided by k). Balanced routing gives k; pooling hides per-layer
 *   collapse, so report routerStats per layer too.
 * - routerZLoss: ST-MoE, mean_t logsumexp(logits[t])².
 * Gradients of the balancing losses flow through the probabilities only (f is a count); feed
 * the d_probs they return to routerTopKBackward's dProbsExtra. Upstream gradients are [1] tensors
 * (the loss coefficient times the incoming gradient, all on the GPU).
 */
import type { Tensor, Backend } from './tensor.ts';
import { MAX_EXPERTS } from './router.ts';
import { foldedGrid } from './grid.ts';

interface LossParams {
  n: number;
  e: number;
  k?: number;
  base?: number;
  layers?: number;
  ntot?: number;
  fscale?: number;
}

function params(p: LossParams) {
  return { n: p.n, e: p.e, k: p.k ?? 0, base: p.base ?? 0, layers: p.layers ?? 0, ntot: p.ntot ?? 0, fscale: p.fscale ?? 0 };
}

function kernel(rt: Backend, entry: string, accumulate = false) {
  return rt.kernel({ shader: 'moe-loss', entry, constants: { ACCUMULATE: accumulate ? 1 : 0 } });
}

function routingDims(probs: Tensor, idx: Tensor): { n: number; e: number; k: number } {
  const [n, e] = probs.shape as [number, number];
  const k = idx.shape[1]!;
  if (probs.shape.length !== 2 || idx.shape.length !== 2 || idx.shape[0] !== n || idx.dtype !== 'u32') {
    throw new Error(`moe-loss: probs ${probs} and idx ${idx} must be [N, E] f32 and [N, k] u32`);
  }
  if (e < 1 || e > MAX_EXPERTS) throw new Error(`moe-loss: ${e} experts; supported 1..${MAX_EXPERTS}`);
  return { n, e, k };
}

function colstatsInto(stats: Tensor, base: number, probs: Tensor, idx: Tensor): void {
  const { n, e, k } = routingDims(probs, idx);
  probs.rt.dispatch(kernel(probs.rt, 'colstats'), { c_probs: probs, c_idx: idx, c_stats: stats }, [e], params({ n, e, k, base }));
}

/**
 * Per-expert column statistics [E, 3] of one layer: (Σ_t probs[t, e], picks of e over all slots,
 * Σ_t -p log p). Shared by switchLoss and routerStats; pass it to both to compute it once.
 */
export function expertColumnStats(probs: Tensor, idx: Tensor): Tensor {
  const { e } = routingDims(probs, idx);
  const stats = probs.rt.empty([e, 3], 'f32', 'moe.colstats');
  colstatsInto(stats, 0, probs, idx);
  return stats;
}

export interface BalanceLoss {
  /** [1] f32 loss value. */
  loss: Tensor;
  /** [E] f32 d loss / d probs[t, e] (the same for every token); saved for backward. */
  coef: Tensor;
}

function finalize(rt: Backend, stats: Tensor, layers: number, e: number, ntot: number, fscale: number): BalanceLoss {
  const loss = rt.empty([1], 'f32', 'moe.balance_loss');
  const coef = rt.empty([e], 'f32', 'moe.balance_coef');
  rt.dispatch(kernel(rt, 'loss_finalize'), { f_stats: stats, f_loss: loss, f_coef: coef }, [1], params({ n: ntot, e, layers, ntot, fscale }));
  return { loss, coef };
}

/** Switch load-balancing loss of one layer (balanced = 1). */
export function switchLoss(probs: Tensor, idx: Tensor, colStats?: Tensor): BalanceLoss {
  const { n, e, k } = routingDims(probs, idx);
  const stats = colStats ?? expertColumnStats(probs, idx);
  const out = finalize(probs.rt, stats, 1, e, n, 1 / (n * k));
  if (!colStats) stats.dispose();
  return out;
}

/**
 * d loss / d probs [N, E] = g * coef[e] for one layer; `into` (an existing [N, E] tensor) is
 * accumulated into and returned instead of allocating.
 */
export function balanceLossBackward(coef: Tensor, g: Tensor, n: number, into?: Tensor): Tensor {
  const rt = coef.rt;
  const e = coef.size;
  if (into && (into.shape[0] !== n || into.shape[1] !== e)) throw new Error(`moe-loss backward: into ${into} is not [${n}, ${e}]`);
  const out = into ?? rt.empty([n, e], 'f32', 'moe.d_probs');
  rt.dispatch(kernel(rt, 'balance_backward', into !== undefined), { bb_g: g, bb_coef: coef, bb_out: out }, foldedGrid(rt, n * e, 256), params({ n, e }));
  return out;
}

export function switchLossBackward(coef: Tensor, g: Tensor, n: number, into?: Tensor): Tensor {
  return balanceLossBackward(coef, g, n, into);
}

export interface LayerRouting {
  probs: Tensor;
  idx: Tensor;
}

/**
 * HF / Time-MoE pooled aux loss over a list of layers (same E and k; no concatenation needed).
 * Balanced = k; the upper bound is E.
 */
export function pooledAuxLoss(layers: readonly LayerRouting[]): BalanceLoss {
  if (layers.length === 0) throw new Error('pooledAuxLoss: no layers');
  const rt = layers[0]!.probs.rt;
  const { e, k } = routingDims(layers[0]!.probs, layers[0]!.idx);
  let nall = 0;
  const stats = rt.empty([layers.length, e, 3], 'f32', 'moe.pooled_stats');
  layers.forEach((l, i) => {
    const d = routingDims(l.probs, l.idx);
    if (d.e !== e || d.k !== k) throw new Error(`pooledAuxLoss: layer ${i} has E=${d.e}, k=${d.k}; layer 0 has E=${e}, k=${k}`);
    nall += d.n;
    colstatsInto(stats, i * e * 3, l.probs, l.idx);
  });
  const out = finalize(rt, stats, layers.length, e, nall, 1 / nall);
  stats.dispose();
  return out;
}

/** d pooled / d probs, one [N_l, E] tensor per layer (or accumulated into `into[l]`). */
export function pooledAuxLossBackward(coef: Tensor, g: Tensor, layers: readonly { probs: Tensor }[], into?: readonly Tensor[]): Tensor[] {
  return layers.map((l, i) => balanceLossBackward(coef, g, l.probs.shape[0]!, into?.[i]));
}

export interface ZLoss {
  /** [1] f32 mean_t logsumexp(logits[t])². */
  loss: Tensor;
  /** [N] f32 logsumexp per token, saved for backward. */
  lse: Tensor;
}

export function routerZLoss(logits: Tensor): ZLoss {
  const rt = logits.rt;
  if (logits.shape.length !== 2 || logits.dtype !== 'f32') throw new Error(`routerZLoss: logits must be [N, E] f32, got ${logits}`);
  const [n, e] = logits.shape as [number, number];
  const lse = rt.empty([n], 'f32', 'moe.z_lse');
  const loss = rt.empty([1], 'f32', 'moe.z_loss');
  const u = params({ n, e });
  rt.dispatch(kernel(rt, 'zloss_lse'), { z_logits: logits, z_lse: lse }, foldedGrid(rt, n, 256), u);
  rt.dispatch(kernel(rt, 'zloss_reduce'), { zr_lse: lse, zr_loss: loss }, [1], u);
  return { loss, lse };
}

/** d z / d logits [N, E] = g * 2 lse_t softmax(logits)[t, e] / N; accumulated into `into` when given. */
export function routerZLossBackward(logits: Tensor, lse: Tensor, g: Tensor, into?: Tensor): Tensor {
  const rt = logits.rt;
  const [n, e] = logits.shape as [number, number];
  if (into && (into.shape[0] !== n || into.shape[1] !== e)) throw new Error(`routerZLossBackward: into ${into} is not [${n}, ${e}]`);
  const out = into ?? rt.empty([n, e], 'f32', 'moe.z_d_logits');
  rt.dispatch(
    kernel(rt, 'zloss_backward', into !== undefined),
    { zb_logits: logits, zb_lse: lse, zb_g: g, zb_out: out },
    foldedGrid(rt, n * e, 256),
    params({ n, e }),
  );
  return out;
}

/**
 * Routing statistics of one layer, [E + 2] f32: load fraction per expert (picks / (N k), sums to 1),
 * mean router entropy (nats; ln E is uniform), max load fraction (1/E is balanced).
 */
export function routerStats(probs: Tensor, idx: Tensor, colStats?: Tensor): Tensor {
  const rt = probs.rt;
  const { n, e, k } = routingDims(probs, idx);
  const stats = colStats ?? expertColumnStats(probs, idx);
  const out = rt.empty([e + 2], 'f32', 'moe.router_stats');
  rt.dispatch(kernel(rt, 'stats_finalize'), { s_stats: stats, s_out: out }, [1], params({ n, e, fscale: 1 / (n * k) }));
  if (!colStats) stats.dispose();
  return out;
}
