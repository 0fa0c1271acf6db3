import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { softmax, logSoftmax, softmaxBackward, logSoftmaxBackward } from '../../src/kernels/softmax.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { projectedNumericGrad, softmaxRows } from '../reference/ops.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

function logSoftmaxRows(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  return softmaxRows(x, rows, cols).map(Math.log);
}

/** dx for loss sum(dy * f(x)) by the row-wise analytic formulas, float64. */
function softmaxBackRef(y: ArrayLike<number>, dy: ArrayLike<number>, rows: number, cols: number, log: boolean): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += log ? dy[r * cols + c]! : dy[r * cols + c]! * y[r * cols + c]!;
    for (let c = 0; c < cols; c++) {
      const k = r * cols + c;
      dx[k] = log ? dy[k]! - Math.exp(y[k]!) * s : y[k]! * (dy[k]! - s);
    }
  }
  return dx;
}


/** Central differences of sum(dy * f(x)) in float64, step 1e-5. */
const fdGrad = (f: (x: Float64Array) => Float64Array, x: Float64Array, dy: ArrayLike<number>) => projectedNumericGrad(f, x, dy, 1e-5);

describe('softmax / log-softmax forward', () => {
  // cols: 1, short router-like rows (a thread per row), not multiples of any lane count (8..256
  // lanes per row), longer than the workgroup.
  const shapes: [number, number][] = [
    [1, 1],
    [5, 1],
    [33, 8],
    [7, 3],
    [130, 17],
    [3, 130],
    [2, 257],
    [4, 1000],
    [2, 9000], // 256 lanes per row
  ];
  for (const [rows, cols] of shapes) {
    it(`[${rows}, ${cols}]`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      // a large common offset per row: without max-subtraction exp overflows
      const x = toF32(Float64Array.from(rng.uniformArray(rows * cols, -8, 8), (v, k) => v + (Math.floor(k / cols) % 2 ? 500 : -40)));
      const t = rt.upload(Float32Array.from(x), [rows, cols]);
      const y = softmax(t);
      const ly = logSoftmax(t);
      // exp of f32-rounded differences and a sum over <= 1000: 1e-5 relative per element (probabilities
      // near 1e-7 carry exp's own few-ulp error), absolute floor 1e-9 for underflowed values.
      expectClose(await y.readF32(), softmaxRows(x, rows, cols), { rtol: 1e-5, atol: 1e-9, seed, what: 'softmax' });
      // log-probabilities: error of x - m - log(s) ~ ulp(|x - m|) ~ 1e-6 absolute
      expectClose(await ly.readF32(), logSoftmaxRows(x, rows, cols), { rtol: 1e-6, atol: 1, seed, what: 'log-softmax' });
      for (const q of [t, y, ly]) q.dispose();
    });
  }

  it('folds more than 65535 workgroups of rows (2-D grid)', async () => {
    // cols = 1: 256 rows per workgroup, so 65535 * 256 + 7 rows need a second grid row.
    const rows = 65_535 * 256 + 7;
    const t = rt.zeros([rows, 1]);
    const y = softmax(t);
    const d = await y.readF32();
    let bad = 0;
    for (let i = 0; i < rows; i++) if (d[i] !== 1) bad++;
    expect(bad).toBe(0);
    t.dispose();
    y.dispose();
  });
});

describe('softmax / log-softmax backward', () => {
  for (const [rows, cols] of [
    [3, 5],
    [2, 9],
    [33, 8],
    [3, 300],
  ] as [number, number][]) {
    it(`[${rows}, ${cols}] analytic${rows * cols <= 64 ? ' and finite differences' : ''}`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const x = toF32(rng.uniformArray(rows * cols, -3, 3));
      const dy = toF32(rng.uniformArray(rows * cols, -1, 1));
      const tx = rt.upload(Float32Array.from(x), [rows, cols]);
      const tdy = rt.upload(Float32Array.from(dy), [rows, cols]);
      for (const log of [false, true]) {
        const what = log ? 'log-softmax' : 'softmax';
        const y = log ? logSoftmax(tx) : softmax(tx);
        const yHost = toF32(await y.readF32());
        const dx = log ? logSoftmaxBackward(y, tdy) : softmaxBackward(y, tdy);
        const got = await dx.readF32();
        // the reference uses the same f32 y the GPU used; sums over <= 300 products: 1e-5 of max
        expectClose(got, softmaxBackRef(yHost, dy, rows, cols, log), { rtol: 1e-5, atol: 1e-7, relativeToMax: true, seed, what: `${what} dx analytic` });
        if (rows * cols <= 64) {
          const f = (v: Float64Array) => (log ? logSoftmaxRows(v, rows, cols) : softmaxRows(v, rows, cols));
          // GPU dx carries y's f32 rounding (~1e-7 relative); finite differences ~1e-10
          expectClose(got, fdGrad(f, x, dy), { rtol: 1e-5, relativeToMax: true, seed, what: `${what} dx finite differences` });
        }
        y.dispose();
        dx.dispose();
      }
      tx.dispose();
      tdy.dispose();
    });
  }
});
