/** Float64 references of the reductions (src/kernels/reduce.ts): sums over an axis, the sum of squares. */

/** Reduce a [outer, n, inner] view along the middle axis. */
export function reduceAxis(a: ArrayLike<number>, outer: number, n: number, inner: number, f: (acc: number, x: number) => number, init: number): Float64Array {
  const out = new Float64Array(outer * inner).fill(init);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < inner; i++) {
        const k = o * inner + i;
        out[k] = f(out[k]!, a[(o * n + j) * inner + i]!);
      }
  return out;
}

export function sumSquares(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}
