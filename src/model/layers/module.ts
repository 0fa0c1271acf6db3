/** Shared plumbing for layers: a runtime, an init RNG and the list of parameters made so far. */
import type { Backend } from '../../kernels/tensor.ts';
import type { Rng } from '../../util/rng.ts';
import { makeParameter, type InitRule } from '../init.ts';
import type { Parameter, ParameterOptions } from '../parameter.ts';

export class ParamFactory {
  readonly params: Parameter[] = [];
  constructor(
    readonly rt: Backend,
    readonly rng: Rng,
  ) {}

  make(name: string, shape: number[], rule: InitRule, opts: ParameterOptions): Parameter {
    const p = makeParameter(this.rt, this.rng, name, shape, rule, opts);
    this.params.push(p);
    return p;
  }
}
