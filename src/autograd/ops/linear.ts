import type { Var } from '../variable.ts';
import { matmul, matmulBackward } from '../../kernels/matmul.ts';
import { sumAxis } from '../../kernels/reduce.ts';
import { record1 } from './op.ts';

/**
 * y = x Wᵀ (+ b) with W [out, in] (nn.Linear layout), bias fused into the matmul epilogue.
 * Backward by layout flags, no transposed copies: dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy.
 */
export function linear(x: Var, w: Var, b: Var | null): Var {
  const inputs = b ? [x, w, b] : [x, w];
  return record1({
    name: 'linear',
    inputs,
    outputs: [matmul(x.data, w.data, { transB: true, bias: b?.data, label: `linear ${w.name}` })],
    saved: [x.data, w.data],
    backward: ([dy], ctx) => {
      const [xd, wd] = ctx.saved;
      const { da, db } = matmulBackward(dy!, xd!, wd!, { transB: true, needA: ctx.needsGrad(0), needB: ctx.needsGrad(1) });
      const rows = dy!.size / dy!.shape[dy!.shape.length - 1]!;
      const dBias = b && ctx.needsGrad(2) ? sumAxis(dy!, { outer: 1, n: rows, inner: w.shape[0]! }, { outShape: [w.shape[0]!] }) : null;
      return [da ?? null, db ?? null, ...(b ? [dBias] : [])];
    },
  });
}
