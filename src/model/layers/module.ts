/** Shared plumbing for layers: a runtime, an init RNG and the list of parameters made so far. */
import type { Backend } from '../../kernels/tensor.ts';
import type { Rng } from '../../util/rng.ts';
import { makeParameter, type InitRule } from '../init.ts';
import type { DType } from '../../kernels/tensor.ts';

/** How parameters are stored: the GPU copy's dtype by shape, and whether the host keeps an f32 master. */
export interface ParamStorage {
  dtypeOf(shape: readonly number[]): DType;
  keepHost: boolean;
}

const F32: ParamStorage = { dtypeOf: () => 'f32', keepHost: false };
import type { Parameter, ParameterOptions } from '../parameter.ts';

export class ParamFactory {
  readonly params: Parameter[] = [];
  constructor(
    readonly rt: Backend,
    readonly rng: Rng,
    readonly storage: ParamStorage = F32,
  ) {}

  make(name: string, shape: number[], rule: InitRule, opts: ParameterOptions): Parameter {
    const p = makeParameter(this.rt, this.rng, name, shape, rule, opts, { dtype: this.storage.dtypeOf(shape), keepHost: this.storage.keepHost });
    this.params.push(p);
    return p;
  }
}
