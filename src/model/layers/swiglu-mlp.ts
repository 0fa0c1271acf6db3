import type { Var } from '../../autograd/variable.ts';
import { swiglu } from '../../autograd/ops/activation.ts';
import { Linear } from './linear.ts';
import type { ParamFactory } from './module.ts';
import type { ParamGroup } from '../parameter.ts';

/** Dense SwiGLU MLP: down(silu(gate x) * up x). Used for the shared expert. */
export class SwiGluMlp {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  constructor(f: ParamFactory, prefix: string, d: number, hidden: number, std: number, downStd: number, group: ParamGroup, layer: number) {
    this.gate = new Linear(f, `${prefix}.gate_proj`, d, hidden, { bias: false, std, group, layer });
    this.up = new Linear(f, `${prefix}.up_proj`, d, hidden, { bias: false, std, group, layer });
    this.down = new Linear(f, `${prefix}.down_proj`, hidden, d, { bias: false, std: downStd, group, layer });
  }
  forward(x: Var): Var {
    return this.down.forward(swiglu(this.gate.forward(x), this.up.forward(x)));
  }
}
