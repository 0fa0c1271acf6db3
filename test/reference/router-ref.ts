/** Float64 references of the top-k router (src/kernels/router.ts, shaders/router.wgsl). */
import { softmaxRows } from './ops.ts';

export interface RouterRef {
  probs: Float64Array;
  idx: number[];
  weights: Float64Array;
}

/** Top-k by logit (same order as by probability), ties to the lower expert index. */
export function topkIndices(logits: ArrayLike<number>, N: number, E: number, k: number): number[] {
  const idx: number[] = [];
  for (let t = 0; t < N; t++) {
    const order = Array.from({ length: E }, (_, e) => e);
    order.sort((a, b) => logits[t * E + b]! - logits[t * E + a]! || a - b);
    idx.push(...order.slice(0, k));
  }
  return idx;
}

export function routerRef(logits: ArrayLike<number>, N: number, E: number, k: number, renormalize: boolean): RouterRef {
  const probs = softmaxRows(logits, N, E);
  const idx = topkIndices(logits, N, E, k);
  const weights = routerWeights(probs, idx, N, E, k, renormalize);
  return { probs, idx, weights };
}

export function routerWeights(probs: ArrayLike<number>, idx: number[], N: number, E: number, k: number, renormalize: boolean): Float64Array {
  const w = new Float64Array(N * k);
  for (let t = 0; t < N; t++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += w[t * k + j] = probs[t * E + idx[t * k + j]!]!;
    if (renormalize) for (let j = 0; j < k; j++) w[t * k + j]! /= s;
  }
  return w;
}

/** Analytic d_logits from d_weights (+ optional extra d_probs), idx held fixed. */
export function routerBackwardRef(
  probs: ArrayLike<number>,
  idx: number[],
  dw: ArrayLike<number>,
  N: number,
  E: number,
  k: number,
  renormalize: boolean,
  dProbsExtra?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(N * E);
  for (let t = 0; t < N; t++) {
    const g = new Float64Array(E);
    for (let e = 0; e < E; e++) g[e] = dProbsExtra ? dProbsExtra[t * E + e]! : 0;
    let S = 0;
    for (let j = 0; j < k; j++) S += probs[t * E + idx[t * k + j]!]!;
    let dotDwW = 0;
    for (let j = 0; j < k; j++) dotDwW += (dw[t * k + j]! * probs[t * E + idx[t * k + j]!]!) / S;
    for (let j = 0; j < k; j++) g[idx[t * k + j]!]! += renormalize ? (dw[t * k + j]! - dotDwW) / S : dw[t * k + j]!;
    let pg = 0;
    for (let e = 0; e < E; e++) pg += probs[t * E + e]! * g[e]!;
    for (let e = 0; e < E; e++) out[t * E + e] = probs[t * E + e]! * (g[e]! - pg);
  }
  return out;
}
