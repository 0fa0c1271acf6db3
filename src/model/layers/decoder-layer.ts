import type { Var } from '../../autograd/variable.ts';
import { add } from '../../autograd/ops/activation.ts';
import { RMSNorm } from './rmsnorm.ts';
import { SelfAttention, type SeqShape } from './attention.ts';
import { MoeFfn, type LayerRouting, type MoeOptions } from './moe.ts';
import type { ParamFactory } from './module.ts';

/** Pre-norm decoder layer: h += attn(norm(h)); h += moe(norm(h)). */
export class DecoderLayer {
  readonly inputNorm: RMSNorm;
  readonly attn: SelfAttention;
  readonly postNorm: RMSNorm;
  readonly ffn: MoeFfn;

  constructor(f: ParamFactory, i: number, o: { d: number; heads: number; theta: number; eps: number; std: number; residualStd: number; moe: MoeOptions }) {
    const p = `model.layers.${i}`;
    this.inputNorm = new RMSNorm(f, `${p}.input_layernorm`, o.d, o.eps, i);
    this.attn = new SelfAttention(f, `${p}.self_attn`, o.d, o.heads, o.theta, o.std, o.residualStd, i);
    this.postNorm = new RMSNorm(f, `${p}.post_attention_layernorm`, o.d, o.eps, i);
    this.ffn = new MoeFfn(f, `${p}.ffn_layer`, o.moe, i);
  }

  forward(h: Var, s: SeqShape): { h: Var; routing: LayerRouting } {
    const a = add(h, this.attn.forward(this.inputNorm.forward(h), s));
    const { out, routing } = this.ffn.forward(this.postNorm.forward(a));
    return { h: add(a, out), routing };
  }
}
