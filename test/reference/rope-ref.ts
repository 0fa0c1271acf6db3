/** Float64 references of RoPE (src/kernels/rope.ts): HF rotate_half, f32 or exact angles. */

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
