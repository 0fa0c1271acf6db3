import type { Var } from '../variable.ts';
import { matmul, matmulBackward } from '../../kernels/matmul.ts';
import { sumAxis } from '../../kernels/reduce.ts';
import { record1 } from './op.ts';

/**
 * y = x Wᵀ (+ b) with W [out, in] (nn.Linear layout), bias fused into the matmul epilogue.
 * Backward by layout flags, no transposed copies: dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy.
 * y is stored in `outDtype` (default: x's dtype) with f32 accumulation; dx gets x's dtype and
 * dW, db the weight's (f32 master weights get f32 gradients from f16 activations).
 */
export function linear(x: Var, w: Var, b: Var | null, outDtype: 'f32' | 'f16' = x.data.dtype === 'f16' ? 'f16' : 'f32'): Var {
  const inputs = b ? [x, w, b] : [x, w];
  return record1({
    name: 'linear',
    inputs,
    outputs: [matmul(x.data, w.data, { transB: true, bias: b?.data, outDtype, label: `linear ${w.name}` })],
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
