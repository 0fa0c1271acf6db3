/** Float64 references of causal attention and its backward (src/kernels/attention.ts). */

export interface AttnDims {
  B: number;
  T: number;
  H: number;
  hd: number;
}

const at = (d: AttnDims, b: number, t: number, h: number): number => ((b * d.T + t) * d.H + h) * d.hd;

/** o = softmax(q kᵀ / sqrt(hd) + causal mask) v per (b, h); lse = logsumexp of each score row. */
export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, d: AttnDims): { o: Float64Array; lse: Float64Array } {
  const { B, T, H, hd } = d;
  const scale = 1 / Math.sqrt(hd);
  const o = new Float64Array(B * T * H * hd);
  const lse = new Float64Array(B * H * T);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const qo = at(d, b, t, h);
        let mx = -Infinity;
        for (let j = 0; j <= t; j++) {
          const ko = at(d, b, j, h);
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += q[qo + c]! * k[ko + c]!;
          s[j] = dot * scale;
          mx = Math.max(mx, s[j]!);
        }
        let l = 0;
        for (let j = 0; j <= t; j++) l += Math.exp(s[j]! - mx);
        lse[(b * H + h) * T + t] = mx + Math.log(l);
        for (let j = 0; j <= t; j++) {
          const p = Math.exp(s[j]! - mx) / l;
          const vo = at(d, b, j, h);
          for (let c = 0; c < hd; c++) o[qo + c] += p * v[vo + c]!;
        }
      }
  return { o, lse };
}

/** Analytic backward through the softmax: dS = P ∘ (dO vᵀ - rowsum(dO ∘ O)). */
export function attentionBackwardRef(
  dO: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  d: AttnDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, H, hd } = d;
  const scale = 1 / Math.sqrt(hd);
  const { o, lse } = attentionRef(q, k, v, d);
  const n = B * T * H * hd;
  const dq = new Float64Array(n);
  const dk = new Float64Array(n);
  const dv = new Float64Array(n);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const qo = at(d, b, t, h);
        let D = 0;
        for (let c = 0; c < hd; c++) D += dO[qo + c]! * o[qo + c]!;
        const L = lse[(b * H + h) * T + t]!;
        for (let j = 0; j <= t; j++) {
          const ko = at(d, b, j, h);
          let sc = 0;
          let dp = 0;
          for (let c = 0; c < hd; c++) {
            sc += q[qo + c]! * k[ko + c]!;
            dp += dO[qo + c]! * v[ko + c]!;
          }
          const p = Math.exp(sc * scale - L);
          const ds = p * (dp - D) * scale;
          for (let c = 0; c < hd; c++) {
            dq[qo + c] += ds * k[ko + c]!;
            dk[ko + c] += ds * q[qo + c]!;
            dv[ko + c] += p * dO[qo + c]!;
          }
        }
      }
  return { dq, dk, dv };
}

// ---------------------------------------------------------------- finite differences
