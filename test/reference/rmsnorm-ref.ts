/** Float64 references of RMSNorm and its backward (src/kernels/rmsnorm.ts). */

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
export function rmsnormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  N: number,
  d: number,
  eps = 1e-6,
): { dx: Float64Array; dw: Float64Array } {
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
