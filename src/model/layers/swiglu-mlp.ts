import type { Var } from '../../autograd/variable.ts';
import { swigluFused } from '../../autograd/ops/activation.ts';
import { linear } from '../../autograd/ops/linear.ts';
import { Linear } from './linear.ts';
import type { ParamFactory } from './module.ts';
import type { Parameter, ParamGroup } from '../parameter.ts';
import type { LoraAdapter } from '../lora.ts';

/**
 * Dense SwiGLU MLP: down(silu(gate x) * up x), used for the shared expert. gate_proj and up_proj
 * are one fused [2H, d] weight (one matmul, then the two-half SwiGLU); the state dict still holds
 * them under their own names.
 */
export class SwiGluMlp {
  readonly gateUp: Parameter;
  readonly down: Linear;
  /** optim.lora on gate_proj + up_proj: one adapter on the fused rows. */
  gateUpAdapter: LoraAdapter | null = null;
  constructor(f: ParamFactory, prefix: string, d: number, hidden: number, std: number, downStd: number, group: ParamGroup, layer: number) {
    this.gateUp = f.make(`${prefix}.{part}.weight`, [2 * hidden, d], { kind: 'normal', std }, { group, decay: true, layer, parts: ['gate_proj', 'up_proj'] });
    this.down = new Linear(f, `${prefix}.down_proj`, hidden, d, { bias: false, std: downStd, group, layer });
  }
  forward(x: Var): Var {
    const gu = linear(x, this.gateUp, null);
    return this.down.forward(swigluFused(this.gateUpAdapter ? this.gateUpAdapter.addTo(gu, x) : gu));
  }
}
