/**
 * Autograd ops for a plain MLP (the peer benchmark workload every engine can run): ReLU, a
 * linear layer with the ReLU fused into the matmul epilogue, and the mean-squared-error loss.
 * Forward and backward sit side by side; every backward reads only GPU tensors, so a training
 * step never waits on the host.
 */
import type { Var } from '../src/autograd/variable.ts';
import type { Tensor } from '../src/kernels/tensor.ts';
import * as ew from '../src/kernels/elementwise.ts';
import { matmul, matmulBackward } from '../src/kernels/matmul.ts';
import { sumAxis } from '../src/kernels/reduce.ts';
import { record1 } from '../src/autograd/ops/op.ts';

/** y = max(x, 0). Saves x: dx = dy where x > 0. */
export function relu(x: Var): Var {
  return record1({
    name: 'relu',
    inputs: [x],
    outputs: [ew.relu(x.data)],
    saved: [x.data],
    backward: ([dy], ctx) => [ew.reluBackward(ctx.saved[0]!, dy!)],
  });
}

/**
 * y = relu(x Wᵀ + b): one matmul dispatch with bias and ReLU in the epilogue, instead of a
 * linear plus a separate elementwise pass over the [rows, out] activation. The backward masks
 * dy with the saved OUTPUT (y > 0 exactly where the pre-activation is > 0), so the
 * pre-activation never has to be stored.
 */
export function linearRelu(x: Var, w: Var, b: Var | null): Var {
  const inputs = b ? [x, w, b] : [x, w];
  const y = matmul(x.data, w.data, { transB: true, bias: b?.data, activation: 'relu', label: `linearRelu ${w.name}` });
  return record1({
    name: 'linearRelu',
    inputs,
    outputs: [y],
    saved: [x.data, w.data, y],
    backward: ([dy], ctx) => {
      const [xd, wd, yd] = ctx.saved;
      const dz = ew.reluBackward(yd!, dy!);
      const { da, db } = matmulBackward(dz, xd!, wd!, { transB: true, needA: ctx.needsGrad(0), needB: ctx.needsGrad(1) });
      const rows = dz.size / dz.shape[dz.shape.length - 1]!;
      const outF = w.shape[0]!;
      const dBias = b && ctx.needsGrad(2) ? sumAxis(dz, { outer: 1, n: rows, inner: outF }, { outShape: [outF] }) : null;
      dz.dispose();
      return [da ?? null, db ?? null, ...(b ? [dBias] : [])];
    },
  });
}

/**
 * Mean squared error over all elements: Σ (pred - target)² / n, a scalar [1] Var. The target
 * carries no gradient. The square is formed inside the reduction (sumAxis `times`), so the only
 * temporary is the difference, which the backward reuses: dpred = (2/n) · g · (pred - target).
 */
export function mseLoss(pred: Var, target: Tensor): Var {
  if (pred.data.size !== target.size) throw new Error(`mseLoss: ${pred} and ${target} differ in size`);
  const n = pred.data.size;
  const diff = ew.sub(pred.data, target);
  const loss = sumAxis(diff, { outer: 1, n, inner: 1 }, { scale: 1 / n, times: diff });
  return record1({
    name: 'mse',
    inputs: [pred],
    outputs: [loss],
    temps: [diff],
    backward: ([g], ctx) => {
      // g is the [1] upstream gradient on the GPU; fold 2/n into it (one tiny dispatch) and
      // broadcast it over the difference.
      const g2 = ew.scale(g!, 2 / n);
      const dp = ew.mul(ctx.saved[0]!, g2);
      g2.dispose();
      return [dp];
    },
  });
}
