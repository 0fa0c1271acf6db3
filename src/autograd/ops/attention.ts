import type { Var } from '../variable.ts';
import { rope as ropeKernel, ropeBackward } from '../../kernels/rope.ts';
import { attention as attentionKernel, attentionBackward } from '../../kernels/attention.ts';
import { record1 } from './op.ts';

export interface AttentionShape {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
}

function dims(s: AttentionShape, theta?: number) {
  return { B: s.batch, T: s.seqLen, H: s.heads, hd: s.headDim, theta };
}

/** Rotary position embedding on [B*T, H*hd] (HF rotate_half convention). */
export function rope(x: Var, s: AttentionShape, theta: number): Var {
  const d = dims(s, theta);
  return record1({
    name: 'rope',
    inputs: [x],
    outputs: [ropeKernel(x.data, d)],
    backward: ([dy]) => [ropeBackward(dy!, d)],
  });
}

/** Causal multi-head attention softmax(q kᵀ/sqrt(hd)) v, fused; saves the row logsumexp. */
export function causalAttention(q: Var, k: Var, v: Var, s: AttentionShape): Var {
  const d = dims(s);
  const { o, lse } = attentionKernel(q.data, k.data, v.data, d);
  return record1({
    name: 'attention',
    inputs: [q, k, v],
    outputs: [o],
    saved: [q.data, k.data, v.data, o],
    temps: [lse],
    backward: ([dO], ctx) => {
      const [qd, kd, vd, od, l] = ctx.saved;
      const { dq, dk, dv } = attentionBackward(dO!, qd!, kd!, vd!, od!, l!, d);
      return [dq, dk, dv];
    },
  });
}
