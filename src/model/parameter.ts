/**
 * Named, grouped parameters. Names are the Hugging Face Time-MoE state-dict names, so init,
 * the optimizer, the guards and checkpoints all address weights the same way.
 */
import { Var } from '../autograd/variable.ts';
import type { Tensor } from '../kernels/tensor.ts';

export type ParamGroup = 'embedding' | 'attention' | 'norm' | 'router' | 'experts' | 'shared_expert' | 'head';

export interface ParameterOptions {
  group: ParamGroup;
  /** Weight decay applies (off for norms and biases). */
  decay: boolean;
  /** Layer index, for per-layer guards and metrics (-1 outside the decoder layers). */
  layer: number;
  /**
   * Experts are stored stacked as one [E, ...] tensor for the grouped matmul; in the state
   * dict slice j is `name` with `{j}` replaced by j.
   */
  stacked?: number;
}

export class Parameter extends Var {
  readonly group: ParamGroup;
  readonly decay: boolean;
  readonly layer: number;
  readonly stacked: number | undefined;

  constructor(data: Tensor, name: string, opts: ParameterOptions) {
    super(data, true, name);
    this.group = opts.group;
    this.decay = opts.decay;
    this.layer = opts.layer;
    this.stacked = opts.stacked;
    if (opts.stacked !== undefined && !name.includes('{j}')) throw new Error(`stacked parameter ${name} needs a {j} slot`);
  }

  /** State-dict entries this parameter covers: [name, shape, element offset]. */
  stateEntries(): { name: string; shape: number[]; offset: number }[] {
    if (this.stacked === undefined) return [{ name: this.name, shape: [...this.shape], offset: 0 }];
    const [e, ...rest] = this.shape;
    const per = rest.reduce((a, b) => a * b, 1);
    return Array.from({ length: e! }, (_, j) => ({ name: this.name.replace('{j}', String(j)), shape: rest, offset: j * per }));
  }
}
