import type { Var } from '../../autograd/variable.ts';
import { rmsnorm } from '../../autograd/ops/rmsnorm.ts';
import type { Parameter } from '../parameter.ts';
import type { ParamFactory } from './module.ts';

export class RMSNorm {
  readonly weight: Parameter;
  constructor(
    f: ParamFactory,
    name: string,
    d: number,
    readonly eps: number,
    layer: number,
  ) {
    this.weight = f.make(`${name}.weight`, [d], { kind: 'constant', value: 1 }, { group: 'norm', decay: false, layer });
  }
  forward(x: Var): Var {
    return rmsnorm(x, this.weight, this.eps);
  }
}
