/** Float64 references of the balancing losses, the z-loss and routing statistics (src/kernels/moe-loss.ts). */

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
