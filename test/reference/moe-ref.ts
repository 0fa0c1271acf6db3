/**
 * Float64 CPU references for the MoE router, token dispatch and balancing losses
 * (src/kernels/{router,dispatch,moe-loss}.ts). Row-major; idx and positions as plain numbers.
 */
import { softmaxRows } from './ops.ts';

export const DROPPED = 0xffffffff;

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

export interface DispatchRef {
  counts: number[];
  offsets: number[];
  pos: number[];
  src: number[];
  rowPair: number[];
  dropped: number;
}

/** Expert-contiguous order, (token, slot) order inside an expert; pairs past `capacity` dropped. */
export function dispatchRef(idx: number[], N: number, E: number, k: number, capacity = Infinity): DispatchRef {
  const lists: number[][] = Array.from({ length: E }, () => []);
  for (let p = 0; p < N * k; p++) lists[idx[p]!]!.push(p);
  const counts = lists.map((l) => Math.min(l.length, capacity));
  const offsets = [0];
  for (let e = 0; e < E; e++) offsets.push(offsets[e]! + counts[e]!);
  const pos = new Array<number>(N * k).fill(DROPPED);
  const src = new Array<number>(N * k).fill(DROPPED);
  const rowPair = new Array<number>(N * k).fill(DROPPED);
  let dropped = 0;
  for (let e = 0; e < E; e++) {
    lists[e]!.forEach((p, r) => {
      if (r >= capacity) {
        dropped++;
        return;
      }
      const row = offsets[e]! + r;
      pos[p] = row;
      src[row] = Math.floor(p / k);
      rowPair[row] = p;
    });
  }
  return { counts, offsets, pos, src, rowPair, dropped };
}

/** xs[r] = x[src[r]] for kept rows, 0 past the last kept row. */
export function gatherRef(x: ArrayLike<number>, plan: DispatchRef, d: number): Float64Array {
  const R = plan.src.length;
  const out = new Float64Array(R * d);
  for (let r = 0; r < plan.offsets[plan.offsets.length - 1]!; r++) for (let c = 0; c < d; c++) out[r * d + c] = x[plan.src[r]! * d + c]!;
  return out;
}

/** dx[t] = Σ_j d_xs[pos[t, j]] over kept pairs. */
export function gatherBackwardRef(dxs: ArrayLike<number>, plan: DispatchRef, N: number, k: number, d: number): Float64Array {
  const dx = new Float64Array(N * d);
  for (let p = 0; p < N * k; p++) {
    const r = plan.pos[p]!;
    if (r === DROPPED) continue;
    const t = Math.floor(p / k);
    for (let c = 0; c < d; c++) dx[t * d + c]! += dxs[r * d + c]!;
  }
  return dx;
}

/** y[t] = Σ_j w[t, j] ys[pos[t, j]] over kept pairs. */
export function combineRef(ys: ArrayLike<number>, w: ArrayLike<number>, plan: DispatchRef, N: number, k: number, d: number): Float64Array {
  const y = new Float64Array(N * d);
  for (let p = 0; p < N * k; p++) {
    const r = plan.pos[p]!;
    if (r === DROPPED) continue;
    const t = Math.floor(p / k);
    for (let c = 0; c < d; c++) y[t * d + c]! += w[p]! * ys[r * d + c]!;
  }
  return y;
}

export function combineBackwardRef(
  dy: ArrayLike<number>,
  ys: ArrayLike<number>,
  w: ArrayLike<number>,
  plan: DispatchRef,
  N: number,
  k: number,
  d: number,
): { dys: Float64Array; dw: Float64Array } {
  const dys = new Float64Array(N * k * d);
  const dw = new Float64Array(N * k);
  for (let p = 0; p < N * k; p++) {
    const r = plan.pos[p]!;
    if (r === DROPPED) continue;
    const t = Math.floor(p / k);
    let s = 0;
    for (let c = 0; c < d; c++) {
      dys[r * d + c] = w[p]! * dy[t * d + c]!;
      s += dy[t * d + c]! * ys[r * d + c]!;
    }
    dw[p] = s;
  }
  return { dys, dw };
}

/** Times each expert was picked, over all k slots. */
export function pickCounts(idx: number[], E: number): Float64Array {
  const c = new Float64Array(E);
  for (const e of idx) c[e]!++;
  return c;
}

/** Mean over tokens of each expert's probability. */
export function meanProbs(probs: ArrayLike<number>, N: number, E: number): Float64Array {
  const P = new Float64Array(E);
  for (let t = 0; t < N; t++) for (let e = 0; e < E; e++) P[e]! += probs[t * E + e]! / N;
  return P;
}

/** Switch loss E Σ f_i P_i, f_i = picks_i / (N k) (balanced = 1). */
export function switchLossRef(probs: ArrayLike<number>, idx: number[], N: number, E: number, k: number): number {
  const f = pickCounts(idx, E);
  const P = meanProbs(probs, N, E);
  let s = 0;
  for (let e = 0; e < E; e++) s += (f[e]! / (N * k)) * P[e]!;
  return E * s;
}

/** d switch / d probs[t, e] = E f_e / N (f is a count: no gradient). */
export function switchLossGradRef(idx: number[], N: number, E: number, k: number): Float64Array {
  const f = pickCounts(idx, E);
  const g = new Float64Array(N * E);
  for (let t = 0; t < N; t++) for (let e = 0; e < E; e++) g[t * E + e] = (E * f[e]!) / (N * k) / N;
  return g;
}

export interface LayerRouting {
  probs: ArrayLike<number>;
  idx: number[];
  N: number;
}

/** HF / Time-MoE pooled loss: all layers' tokens pooled; E Σ_{j,i} tokens_per_expert[j,i] router_prob[i] (balanced = k). */
export function pooledLossRef(layers: LayerRouting[], E: number, k: number): number {
  const Nall = layers.reduce((a, l) => a + l.N, 0);
  const tpe = new Float64Array(k * E);
  const rp = new Float64Array(E);
  for (const l of layers) {
    for (let t = 0; t < l.N; t++) {
      for (let j = 0; j < k; j++) tpe[j * E + l.idx[t * k + j]!]! += 1 / Nall;
      for (let e = 0; e < E; e++) rp[e]! += l.probs[t * E + e]! / Nall;
    }
  }
  let s = 0;
  for (let j = 0; j < k; j++) for (let e = 0; e < E; e++) s += tpe[j * E + e]! * rp[e]!;
  return E * s;
}

export function pooledLossGradRef(layers: LayerRouting[], E: number): Float64Array[] {
  const Nall = layers.reduce((a, l) => a + l.N, 0);
  const picks = new Float64Array(E);
  for (const l of layers) for (const e of l.idx) picks[e]!++;
  return layers.map((l) => {
    const g = new Float64Array(l.N * E);
    for (let t = 0; t < l.N; t++) for (let e = 0; e < E; e++) g[t * E + e] = (E * picks[e]!) / (Nall * Nall);
    return g;
  });
}

export function logsumexpRows(logits: ArrayLike<number>, N: number, E: number): Float64Array {
  const out = new Float64Array(N);
  for (let t = 0; t < N; t++) {
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, logits[t * E + e]!);
    let s = 0;
    for (let e = 0; e < E; e++) s += Math.exp(logits[t * E + e]! - m);
    out[t] = m + Math.log(s);
  }
  return out;
}

/** ST-MoE router z-loss: mean over tokens of logsumexp(logits)². */
export function zLossRef(logits: ArrayLike<number>, N: number, E: number): number {
  const lse = logsumexpRows(logits, N, E);
  let s = 0;
  for (let t = 0; t < N; t++) s += lse[t]! * lse[t]!;
  return s / N;
}

export function zLossGradRef(logits: ArrayLike<number>, N: number, E: number): Float64Array {
  const lse = logsumexpRows(logits, N, E);
  const g = new Float64Array(N * E);
  for (let t = 0; t < N; t++) for (let e = 0; e < E; e++) g[t * E + e] = (2 * lse[t]! * Math.exp(logits[t * E + e]! - lse[t]!)) / N;
  return g;
}

/** [E + 2]: load fractions picks_e / (N k), mean router entropy, max load fraction. */
export function routerStatsRef(probs: ArrayLike<number>, idx: number[], N: number, E: number, k: number): Float64Array {
  const out = new Float64Array(E + 2);
  const f = pickCounts(idx, E);
  let mx = 0;
  for (let e = 0; e < E; e++) {
    out[e] = f[e]! / (N * k);
    mx = Math.max(mx, out[e]!);
  }
  let H = 0;
  for (let i = 0; i < N * E; i++) {
    const p = probs[i]!;
    if (p > 0) H -= p * Math.log(p);
  }
  out[E] = H / N;
  out[E + 1] = mx;
  return out;
}

export { numericGrad as finiteDiff } from './ops.ts';
