/**
 * Sparse MoE FFN (Time-MoE / Qwen2-MoE): router Linear(d->E) without bias, softmax in f32,
 * top-k (weights not renormalised unless configured), E SwiGLU experts run as grouped matmuls over
 * expert-contiguous token blocks, an optional shared expert scaled by sigmoid(Linear(d->1)).
 */
import type { Var } from '../../autograd/variable.ts';
import type { Tensor } from '../../kernels/tensor.ts';
import { add, mulColumn, sigmoid, swigluFused } from '../../autograd/ops/activation.ts';
import { combine, gatherRows, groupedLinear, routeAndDispatch } from '../../autograd/ops/moe.ts';
import { Linear } from './linear.ts';
import { SwiGluMlp } from './swiglu-mlp.ts';
import type { ParamFactory } from './module.ts';
import type { Parameter } from '../parameter.ts';
import type { LoraAdapter } from '../lora.ts';

export interface MoeOptions {
  d: number;
  experts: number;
  topK: number;
  intermediate: number;
  sharedIntermediate: number;
  normTopkProb: boolean;
  capacityFactor: number | null;
  std: number;
  routerStd: number;
  downStd: number;
}

/** What the losses and metrics need from one layer's routing. */
export interface LayerRouting {
  layer: number;
  logits: Var;
  probs: Var;
  /** [N, k] u32 expert ids. */
  idx: Tensor;
  /** [E+1] u32 exclusive offsets of each expert's rows (counts are diffs). */
  offsets: Tensor;
  /** [1] u32 pairs dropped by the capacity limit (0 when dropless). */
  dropped: Tensor;
}

export class MoeFfn {
  readonly router: Linear;
  /** gate_proj and up_proj of every expert, fused: [E, 2H, d] (one grouped matmul). */
  readonly gateUpProj: Parameter;
  readonly downProj: Parameter;
  readonly shared: SwiGluMlp | null;
  readonly sharedGate: Linear | null;
  /** optim.lora on the routed experts (one adapter per expert, stacked like the weights). */
  gateUpAdapter: LoraAdapter | null = null;
  downAdapter: LoraAdapter | null = null;

  constructor(
    f: ParamFactory,
    prefix: string,
    readonly o: MoeOptions,
    readonly layer: number,
  ) {
    const ex = { group: 'experts' as const, decay: true, layer, stacked: o.experts };
    this.router = new Linear(f, `${prefix}.gate`, o.d, o.experts, { bias: false, std: o.routerStd, group: 'router', layer });
    // Every expert drawn from the same distribution, stacked [E, out, in] for the grouped matmul.
    this.gateUpProj = f.make(
      `${prefix}.experts.{j}.{part}.weight`,
      [o.experts, 2 * o.intermediate, o.d],
      { kind: 'normal', std: o.std },
      { ...ex, parts: ['gate_proj', 'up_proj'] },
    );
    this.downProj = f.make(`${prefix}.experts.{j}.down_proj.weight`, [o.experts, o.d, o.intermediate], { kind: 'normal', std: o.downStd }, ex);
    if (o.sharedIntermediate > 0) {
      this.shared = new SwiGluMlp(f, `${prefix}.shared_expert`, o.d, o.sharedIntermediate, o.std, o.downStd, 'shared_expert', layer);
      this.sharedGate = new Linear(f, `${prefix}.shared_expert_gate`, o.d, 1, { bias: false, std: o.std, group: 'shared_expert', layer });
    } else {
      this.shared = null;
      this.sharedGate = null;
    }
  }

  /** `onLogits` sees the router logits before routing (guards, fault injection). */
  forward(x: Var, onLogits: (logits: Var) => Var = (l) => l): { out: Var; routing: LayerRouting } {
    // Router logits in f32 whatever the activation dtype: softmax and top-k need the range.
    const logits = onLogits(this.router.forward(x, 'f32'));
    // Softmax, top-k and the token permutation: two dispatches.
    const { probs, weights, idx, plan } = routeAndDispatch(logits, this.o.topK, this.o.normTopkProb, this.o.experts, this.o.capacityFactor);
    const xs = gatherRows(x, plan);
    const gu = groupedLinear(xs, this.gateUpProj, plan);
    const h = swigluFused(this.gateUpAdapter ? this.gateUpAdapter.addToGrouped(gu, xs, plan) : gu);
    const down = groupedLinear(h, this.downProj, plan);
    const ys = this.downAdapter ? this.downAdapter.addToGrouped(down, h, plan) : down;
    let out = combine(ys, weights, plan);
    if (this.shared && this.sharedGate) {
      out = add(out, mulColumn(this.shared.forward(x), sigmoid(this.sharedGate.forward(x))));
    }
    return { out, routing: { layer: this.layer, logits, probs, idx: idx.data, offsets: plan.offsets, dropped: plan.dropped } };
  }
}
