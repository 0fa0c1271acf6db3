/**
 * Float64 CPU references for RMSNorm, RoPE (HF rotate_half) and causal multi-head attention,
 * forward and backward, plus a central-difference helper for gradient checks.
 * Layouts match the kernels: x [N, d]; q/k/v/o [B, T, H*hd]; lse [B, H, T].
 */

// ---------------------------------------------------------------- RMSNorm

export function rmsnormRef(x: ArrayLike<number>, w: ArrayLike<number>, N: number, d: number, eps = 1e-6): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(N * d);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < d; c++) ss += x[n * d + c]! ** 2;
    const r = 1 / Math.sqrt(ss / d + eps);
    rstd[n] = r;
    for (let c = 0; c < d; c++) y[n * d + c] = w[c]! * x[n * d + c]! * r;
  }
  return { y, rstd };
}

/** Analytic backward: dx_c = r w_c dy_c - (r^3 / d) x_c Σ_j w_j dy_j x_j;  dw_c = Σ_n dy_nc x_nc r_n. */
export function rmsnormBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, N: number, d: number, eps = 1e-6): { dx: Float64Array; dw: Float64Array } {
  const { rstd } = rmsnormRef(x, w, N, d, eps);
  const dx = new Float64Array(N * d);
  const dw = new Float64Array(d);
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let s = 0;
    for (let c = 0; c < d; c++) s += w[c]! * dy[n * d + c]! * x[n * d + c]!;
    for (let c = 0; c < d; c++) {
      const i = n * d + c;
      dx[i] = r * w[c]! * dy[i]! - ((r * r * r) / d) * x[i]! * s;
      dw[c] += dy[i]! * x[i]! * r;
    }
  }
  return { dx, dw };
}

// ---------------------------------------------------------------- RoPE

/**
 * Angles the way HF LLaMA / Time-MoE compute them: inv_freq = 1 / theta^(2i/hd) in float32,
 * then freqs = float32(pos * inv_freq). `exact` skips the float32 roundings (ideal math).
 */
export function ropeAngle(pos: number, i: number, hd: number, theta: number, exact = false): number {
  if (exact) return pos * Math.pow(theta, (-2 * i) / hd);
  const f = Math.fround;
  const invFreq = f(1 / f(Math.pow(theta, f((2 * i) / hd))));
  return f(pos * invFreq);
}

/** Rotate every head vector of x [B, T, H, hd] by sign * angle(t, i) (sign -1 = the backward). */
export function ropeRef(x: ArrayLike<number>, B: number, T: number, H: number, hd: number, theta = 10000, sign = 1, exact = false): Float64Array {
  const half = hd / 2;
  const y = new Float64Array(B * T * H * hd);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * hd;
        for (let i = 0; i < half; i++) {
          const a = ropeAngle(t, i, hd, theta, exact);
          const c = Math.cos(a);
          const s = sign * Math.sin(a);
          const x1 = x[base + i]!;
          const x2 = x[base + i + half]!;
          y[base + i] = x1 * c - x2 * s;
          y[base + i + half] = x2 * c + x1 * s;
        }
      }
  return y;
}

// ---------------------------------------------------------------- attention

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
export function attentionBackwardRef(dO: ArrayLike<number>, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, d: AttnDims): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
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

export { projectedNumericGrad as finiteDiffGrad } from './ops.ts';
