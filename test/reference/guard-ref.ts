/** Float64 reference of the isfinite guards' statistics (src/kernels/guard.ts). */

/** float64 reference: [nonFinite, min, max, mean of finite], NaN x3 when nothing is finite. */
export function statsRef(a: ArrayLike<number>): number[] {
  let bad = 0;
  let mn = Infinity;
  let mx = -Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (!Number.isFinite(v)) bad++;
    else {
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
      s += v;
    }
  }
  const n = a.length - bad;
  return n === 0 ? [bad, NaN, NaN, NaN] : [bad, mn, mx, s / n];
}
