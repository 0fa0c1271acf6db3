/** Float64 reference of AdamW (src/kernels/adamw.ts): torch.optim.AdamW's update. */

export interface RefState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** torch.optim.AdamW (float64): p -= lr wd p; m, v EMAs; p -= lr mhat / (sqrt(vhat) + eps). In place. */
export function adamwRef(s: RefState, g: ArrayLike<number>, coef: number, lr: number, wd: number, b1: number, b2: number, eps: number, t: number): void {
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  for (let i = 0; i < s.p.length; i++) {
    const gi = g[i]! * coef;
    s.p[i] = s.p[i]! - lr * wd * s.p[i]!;
    s.m[i] = b1 * s.m[i]! + (1 - b1) * gi;
    s.v[i] = b2 * s.v[i]! + (1 - b2) * gi * gi;
    s.p[i] = s.p[i]! - (lr * (s.m[i]! / bc1)) / (Math.sqrt(s.v[i]! / bc2) + eps);
  }
}
