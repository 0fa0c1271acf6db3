/** Float64 references of mean pooling over the middle axis and its backward (src/kernels/mean-pool.ts). */

/** x viewed as [outer, n, inner] -> the mean over n, [outer, inner]. */
export function meanPoolRef(x: ArrayLike<number>, outer: number, n: number, inner: number): Float64Array {
  const y = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) for (let j = 0; j < n; j++) for (let i = 0; i < inner; i++) y[o * inner + i] += x[(o * n + j) * inner + i]! / n;
  return y;
}

/** dx [outer, n, inner] = dy[o, i] / n, broadcast over the pooled axis. */
export function meanPoolBackwardRef(dy: ArrayLike<number>, outer: number, n: number, inner: number): Float64Array {
  const dx = new Float64Array(outer * n * inner);
  for (let o = 0; o < outer; o++) for (let j = 0; j < n; j++) for (let i = 0; i < inner; i++) dx[(o * n + j) * inner + i] = dy[o * inner + i]! / n;
  return dx;
}
