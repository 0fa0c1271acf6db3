import type { Var } from '../../autograd/variable.ts';
import { add } from '../../autograd/ops/activation.ts';
import { recomputed } from '../../autograd/recompute.ts';
import { RMSNorm } from './rmsnorm.ts';
import { SelfAttention, type SeqShape } from './attention.ts';
import { MoeFfn, type LayerRouting, type MoeOptions } from './moe.ts';
import type { ParamFactory } from './module.ts';

/** Where a layer's activations are checked by the isfinite guards (and where faults can be injected). */
export type TapSite = 'attn_out' | 'router_logits' | 'ffn_out' | 'output';

export interface Tap {
  layer: number;
  site: TapSite;
  v: Var;
}

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

  /**
   * With `recompute`, only this layer's input is kept for backward and the layer runs again there
   * (activation recomputation); `params` are the layer's parameters.
   */
  forward(
    h: Var,
    s: SeqShape,
    fault: TapSite | null = null,
    recompute: { params: readonly Var[] } | null = null,
  ): { h: Var; routing: LayerRouting; taps: Tap[] } {
    if (!recompute) return this.run(h, s, fault);
    const layer = this.ffn.layer;
    const r = recomputed(`layer ${layer}`, [h], recompute.params, ([x]) => {
      const o = this.run(x!, s, fault);
      const t = (site: TapSite) => o.taps.find((q) => q.site === site)!.v;
      return {
        outputs: [o.h, o.routing.logits, o.routing.probs, t('attn_out'), t('ffn_out')],
        extra: o.routing,
        keep: [o.routing.idx, o.routing.offsets, o.routing.dropped],
      };
    });
    const [y, logits, probs, attnOut, ffnOut] = r.outputs as [Var, Var, Var, Var, Var];
    const routing: LayerRouting = { ...r.extra, logits, probs };
    const taps: Tap[] = [
      { layer, site: 'attn_out', v: attnOut },
      { layer, site: 'router_logits', v: logits },
      { layer, site: 'ffn_out', v: ffnOut },
      { layer, site: 'output', v: y },
    ];
    return { h: y, routing, taps };
  }

  /** The layer's computation, as a region of its own (the memory plan's per-layer rows). */
  private run(h: Var, s: SeqShape, fault: TapSite | null): { h: Var; routing: LayerRouting; taps: Tap[] } {
    return h.data.rt.region(`layer ${this.ffn.layer}`, () => this.compute(h, s, fault));
  }

  private compute(h: Var, s: SeqShape, fault: TapSite | null): { h: Var; routing: LayerRouting; taps: Tap[] } {
    const layer = this.ffn.layer;
    const tap = (site: TapSite, v: Var): Var => {
      if (fault === site) v.data.rt.fill(v.data, NaN); // fault injection (experiments, guard tests)
      return v;
    };
    const attnOut = tap('attn_out', this.attn.forward(this.inputNorm.forward(h), s));
    const a = add(h, attnOut);
    const { out, routing } = this.ffn.forward(this.postNorm.forward(a), (logits) => tap('router_logits', logits));
    const ffnOut = tap('ffn_out', out);
    const y = tap('output', add(a, ffnOut));
    const taps: Tap[] = [
      { layer, site: 'attn_out', v: attnOut },
      { layer, site: 'router_logits', v: routing.logits },
      { layer, site: 'ffn_out', v: ffnOut },
      { layer, site: 'output', v: y },
    ];
    return { h: y, routing, taps };
  }
}
