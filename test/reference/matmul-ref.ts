/** Float64 reference of the matmul family (src/kernels/matmul.ts): every layout by flags. */

/** C[M,N] = op(A)·op(B); A is [M,K] (or [K,M] when transA), B is [K,N] (or [N,K] when transB). Row-major. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, transA = false, transB = false): Float64Array {
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? a[k * M + m]! : a[m * K + k]!;
        const bv = transB ? b[n * K + k]! : b[k * N + n]!;
        s += av * bv;
      }
      c[m * N + n] = s;
    }
  }
  return c;
}
