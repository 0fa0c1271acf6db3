import type { Var } from '../../autograd/variable.ts';
import { linear } from '../../autograd/ops/linear.ts';
import type { Parameter, ParamGroup } from '../parameter.ts';
import type { ParamFactory } from './module.ts';
import type { LoraAdapter } from '../lora.ts';

/** nn.Linear: y = x Wᵀ (+ b), W stored [out, in] as in PyTorch / the HF state dict. */
export class Linear {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  /** optim.lora: the low-rank update added to the output (set by TimeMoeModel). */
  adapter: LoraAdapter | null = null;

  constructor(f: ParamFactory, name: string, inF: number, outF: number, o: { bias: boolean; std: number; group: ParamGroup; layer: number }) {
    this.weight = f.make(`${name}.weight`, [outF, inF], { kind: 'normal', std: o.std }, { group: o.group, decay: true, layer: o.layer });
    this.bias = o.bias ? f.make(`${name}.bias`, [outF], { kind: 'constant', value: 0 }, { group: o.group, decay: false, layer: o.layer }) : null;
  }

  /** `outDtype` defaults to x's dtype (f16 activations stay f16). */
  forward(x: Var, outDtype?: 'f32' | 'f16'): Var {
    const y = linear(x, this.weight, this.bias, outDtype);
    return this.adapter ? this.adapter.addTo(y, x) : y;
  }
}
