/** Float64 helpers shared by the references and tests; each kernel's own reference is test/reference/<stem>-ref.ts. */

export function map(a: ArrayLike<number>, f: (x: number, i: number) => number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]!, i);
  return out;
}

export function zip(a: ArrayLike<number>, b: ArrayLike<number>, f: (x: number, y: number, i: number) => number): Float64Array {
  if (a.length !== b.length) throw new Error(`zip: lengths ${a.length} and ${b.length} differ`);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]!, b[i]!, i);
  return out;
}

export function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

/** Softmax over the last axis of [rows, cols]. */
export function softmaxRows(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, a[r * cols + c]!);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(a[r * cols + c]! - mx);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(a[r * cols + c]! - mx) / s;
  }
  return out;
}

/** Transpose a row-major [rows, cols] matrix. */
export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/**
 * Central-difference gradient of a scalar function of x, in float64 (x is copied; f may mutate
 * nothing). The one finite-difference helper every reference and gradient test uses.
 */
export function numericGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, eps = 1e-6): Float64Array {
  const xs = Float64Array.from(x);
  const grad = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    xs[i] = v + eps;
    const fp = f(xs);
    xs[i] = v - eps;
    const fm = f(xs);
    xs[i] = v;
    grad[i] = (fp - fm) / (2 * eps);
  }
  return grad;
}

/** Gradient of L(x) = Σ_i g_i · f(x)_i: finite differences of a vector function projected on g. */
export function projectedNumericGrad(f: (x: Float64Array) => Float64Array, x: ArrayLike<number>, g: ArrayLike<number>, eps = 1e-6): Float64Array {
  return numericGrad(
    (xs) => {
      const y = f(xs);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += g[i]! * y[i]!;
      return s;
    },
    x,
    eps,
  );
}
