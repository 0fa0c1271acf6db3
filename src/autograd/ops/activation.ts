/** Elementwise autograd ops: add (with broadcast), constant scale, column-broadcast mul, sigmoid, SwiGLU. */
import type { Var } from '../variable.ts';
import * as ew from '../../kernels/elementwise.ts';
import { swiglu as swigluKernel, swigluBackward, swigluFused as swigluFusedKernel, swigluFusedBackward } from '../../kernels/swiglu.ts';
import { record1 } from './op.ts';

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** a + b, b equal in shape or broadcast along a's leading dims. */
export function add(a: Var, b: Var): Var {
  const broadcast = !sameShape(a.shape, b.shape);
  const bShape = b.shape;
  return record1({
    name: 'add',
    inputs: [a, b],
    outputs: [ew.add(a.data, b.data)],
    backward: ([dy], ctx) => [ctx.needsGrad(0) ? dy! : null, ctx.needsGrad(1) ? (broadcast ? ew.sumToShape(dy!, bShape) : dy!) : null],
  });
}

/** s * x for a constant s (the LoRA scale alpha / rank); backward: s * dy. */
export function scale(x: Var, s: number): Var {
  return record1({
    name: 'scale',
    inputs: [x],
    outputs: [ew.scale(x.data, s)],
    backward: ([dy]) => [ew.scale(dy!, s)],
  });
}

/** x * s with x [N, d] and s [N, 1] (the shared-expert gate). */
export function mulColumn(x: Var, s: Var): Var {
  if (s.shape.length !== 2 || s.shape[1] !== 1 || s.shape[0] !== x.shape[0]) throw new Error(`mulColumn: ${s} must be [${x.shape[0]}, 1]`);
  return record1({
    name: 'mulColumn',
    inputs: [x, s],
    outputs: [ew.mul(x.data, s.data)],
    saved: [x.data, s.data],
    backward: ([dy], ctx) => {
      const [xd, sd] = ctx.saved;
      const { da, db } = ew.mulBackward(xd!, sd!, dy!);
      if (!ctx.needsGrad(0)) da.dispose();
      if (!ctx.needsGrad(1)) db.dispose();
      return [ctx.needsGrad(0) ? da : null, ctx.needsGrad(1) ? db : null];
    },
  });
}

export function sigmoid(x: Var): Var {
  const y = ew.sigmoid(x.data);
  return record1({
    name: 'sigmoid',
    inputs: [x],
    outputs: [y],
    saved: [y],
    backward: ([dy], ctx) => [ew.sigmoidBackward(ctx.saved[0]!, dy!)],
  });
}

/** silu(g) * u, fused forward and backward. */
export function swiglu(g: Var, u: Var): Var {
  return record1({
    name: 'swiglu',
    inputs: [g, u],
    outputs: [swigluKernel(g.data, u.data)],
    saved: [g.data, u.data],
    backward: ([dh], ctx) => {
      const { dg, du } = swigluBackward(ctx.saved[0]!, ctx.saved[1]!, dh!);
      return [dg, du];
    },
  });
}

/** silu(gu[:, :H]) * gu[:, H:] from one fused gate+up projection [R, 2H]; backward writes [R, 2H]. */
export function swigluFused(gu: Var): Var {
  return record1({
    name: 'swigluFused',
    inputs: [gu],
    outputs: [swigluFusedKernel(gu.data)],
    saved: [gu.data],
    backward: ([dh], ctx) => [swigluFusedBackward(ctx.saved[0]!, dh!)],
  });
}
