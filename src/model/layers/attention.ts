import type { Var } from '../../autograd/variable.ts';
import { causalAttention, rope } from '../../autograd/ops/attention.ts';
import { Linear } from './linear.ts';
import type { ParamFactory } from './module.ts';

export interface SeqShape {
  batch: number;
  seqLen: number;
}

/** Causal self-attention with RoPE: q/k/v with bias, o without (Time-MoE). */
export class SelfAttention {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly headDim: number;

  constructor(
    f: ParamFactory,
    prefix: string,
    d: number,
    readonly heads: number,
    readonly theta: number,
    std: number,
    oStd: number,
    layer: number,
  ) {
    const g = { group: 'attention' as const, layer };
    this.q = new Linear(f, `${prefix}.q_proj`, d, d, { bias: true, std, ...g });
    this.k = new Linear(f, `${prefix}.k_proj`, d, d, { bias: true, std, ...g });
    this.v = new Linear(f, `${prefix}.v_proj`, d, d, { bias: true, std, ...g });
    this.o = new Linear(f, `${prefix}.o_proj`, d, d, { bias: false, std: oStd, ...g });
    this.headDim = d / heads;
  }

  forward(x: Var, s: SeqShape): Var {
    const shape = { batch: s.batch, seqLen: s.seqLen, heads: this.heads, headDim: this.headDim };
    const q = rope(this.q.forward(x), shape, this.theta);
    const k = rope(this.k.forward(x), shape, this.theta);
    const v = this.v.forward(x);
    return this.o.forward(causalAttention(q, k, v, shape));
  }
}
