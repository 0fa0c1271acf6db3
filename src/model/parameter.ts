/**
 * Named, grouped parameters. Names are the Hugging Face Time-MoE state-dict names, so init,
 * the optimizer, the guards and checkpoints all address weights the same way.
 */
import { Var } from '../autograd/variable.ts';
import type { Tensor } from '../kernels/tensor.ts';

export type ParamGroup = 'embedding' | 'attention' | 'norm' | 'router' | 'experts' | 'shared_expert' | 'head' | 'lora';

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
  /**
   * Fused projections: the (per-expert) weight is the row-wise concatenation of equal parts, e.g.
   * ['gate_proj', 'up_proj'] for one [2H, d] gate+up matmul; part p is `name` with `{part}` replaced.
   */
  parts?: readonly string[];
}

export class Parameter extends Var {
  readonly group: ParamGroup;
  readonly decay: boolean;
  readonly layer: number;
  readonly stacked: number | undefined;
  readonly parts: readonly string[] | undefined;

  /** The f32 initial values drawn on the host, kept for an offloaded optimizer's master copy (takeHostMaster). */
  private hostMaster: Float32Array | null = null;

  constructor(data: Tensor, name: string, opts: ParameterOptions) {
    super(data, true, name);
    this.group = opts.group;
    this.decay = opts.decay;
    this.layer = opts.layer;
    this.stacked = opts.stacked;
    this.parts = opts.parts;
    if (opts.stacked !== undefined && !name.includes('{j}')) throw new Error(`stacked parameter ${name} needs a {j} slot`);
    if (opts.parts && !name.includes('{part}')) throw new Error(`fused parameter ${name} needs a {part} slot`);
  }

  keepHostMaster(values: Float32Array): void {
    this.hostMaster = values;
  }

  /** The kept f32 initial values (once: the caller owns them from then on). */
  takeHostMaster(): Float32Array {
    const m = this.hostMaster;
    if (!m) throw new Error(`${this.name}: no host master copy was kept (build the model with keepHost for optim.offload "host")`);
    this.hostMaster = null;
    return m;
  }

  /** State-dict entries this parameter covers: [name, shape, element offset]. */
  stateEntries(): { name: string; shape: number[]; offset: number }[] {
    const experts = this.stacked === undefined ? [null] : Array.from({ length: this.shape[0]! }, (_, j) => j);
    const slice = this.stacked === undefined ? [...this.shape] : this.shape.slice(1);
    const parts = this.parts ?? [null];
    const [rows, ...rest] = slice;
    const partShape = this.parts ? [rows! / parts.length, ...rest] : slice;
    const partSize = partShape.reduce((a, b) => a * b, 1);
    return experts.flatMap((j) =>
      parts.map((part, p) => ({
        name: this.name.replace('{j}', String(j)).replace('{part}', part ?? ''),
        shape: partShape,
        offset: ((j ?? 0) * parts.length + p) * partSize,
      })),
    );
  }
}
