import type { Var } from '../variable.ts';
import { rmsnorm as rmsnormKernel, rmsnormBackward } from '../../kernels/rmsnorm.ts';
import { record1 } from './op.ts';

/** RMSNorm over the last dim: y = w * x / sqrt(mean(x²) + eps). */
export function rmsnorm(x: Var, w: Var, eps: number): Var {
  const { y, rstd } = rmsnormKernel(x.data, w.data, eps);
  return record1({
    name: 'rmsnorm',
    inputs: [x, w],
    outputs: [y],
    saved: [x.data, w.data],
    temps: [rstd],
    backward: ([dy], ctx) => {
      const [xd, wd, r] = ctx.saved;
      const { dx, dw } = rmsnormBackward(dy!, xd!, wd!, r!);
      return [dx, dw];
    },
  });
}
