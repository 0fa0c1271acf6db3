/** Float64 references of SwiGLU and its backward (src/kernels/swiglu.ts), separate and fused gate | up layouts. */

/** Overflow-free float64 sigmoid. */
export function sigmoidRef(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function swigluRef(g: ArrayLike<number>, u: ArrayLike<number>): Float64Array {
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) h[i] = g[i]! * sigmoidRef(g[i]!) * u[i]!;
  return h;
}

export function swigluGradRef(g: ArrayLike<number>, u: ArrayLike<number>, dh: ArrayLike<number>): { dg: Float64Array; du: Float64Array } {
  const dg = new Float64Array(g.length);
  const du = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = sigmoidRef(g[i]!);
    dg[i] = dh[i]! * u[i]! * s * (1 + g[i]! * (1 - s));
    du[i] = dh[i]! * g[i]! * s;
  }
  return { dg, du };
}

/** Split a row-major [R, 2H] array into its gate [R, H] and up [R, H] halves. */
export function splitGateUp(gu: ArrayLike<number>, R: number, H: number): { g: Float64Array; u: Float64Array } {
  const g = new Float64Array(R * H);
  const u = new Float64Array(R * H);
  for (let r = 0; r < R; r++)
    for (let c = 0; c < H; c++) {
      g[r * H + c] = gu[r * 2 * H + c]!;
      u[r * H + c] = gu[r * 2 * H + H + c]!;
    }
  return { g, u };
}
