/**
 * LoRA adapters (optim.lora): a projection y = x Wᵀ becomes y = x Wᵀ + (alpha / rank) (x Aᵀ) Bᵀ,
 * A [rank, in] drawn small, B [out, rank] zero (the adapted model starts equal to the base), W
 * frozen. Built from the linear and grouped-linear ops: routed experts get one adapter each,
 * stacked [E, rank, in] / [E, out, rank] like their weights. gate_proj and up_proj are one fused
 * [2H, d] weight here (layers/swiglu-mlp.ts), so they take one adapter on the fused rows and must
 * be named together. Merging (export, forecast) writes W + (alpha / rank) B A back under W's names.
 */
import { z } from 'zod';
import type { Var } from '../autograd/variable.ts';
import { add, scale } from '../autograd/ops/activation.ts';
import { linear } from '../autograd/ops/linear.ts';
import { groupedLinear } from '../autograd/ops/moe.ts';
import type { DispatchPlan } from '../kernels/dispatch.ts';
import type { ParamFactory } from './layers/module.ts';
import type { Parameter } from './parameter.ts';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

export const LoraSchema = z
  .object({
    rank: z.number().int().positive().max(1024),
    /** The update is scaled by alpha / rank. */
    alpha: z.number().positive(),
    /** Projections to adapt: attention q/k/v/o, and gate/up/down of every routed expert and the shared expert. */
    targets: z.array(z.enum(LORA_TARGETS)).min(1),
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.targets.includes('gate_proj') !== l.targets.includes('up_proj'))
      ctx.addIssue({
        code: 'custom',
        path: ['targets'],
        message: `gate_proj and up_proj are one fused weight in this engine and take one adapter: name both or neither (got ${JSON.stringify(l.targets)})`,
      });
  });

export type LoraConfig = z.output<typeof LoraSchema>;

/** The adapter's name for a base weight: `<module>.lora_A.weight`, a fused gate|up being `gate_up_proj`. */
function adapterName(base: Parameter, which: 'A' | 'B'): string {
  return base.name.replace('{part}', 'gate_up_proj').replace(/\.weight$/, `.lora_${which}.weight`);
}

export class LoraAdapter {
  /** [rank, in], or [E, rank, in] for stacked experts. */
  readonly a: Parameter;
  /** [out, rank], or [E, out, rank]. */
  readonly b: Parameter;
  readonly scale: number;

  constructor(
    f: ParamFactory,
    /** The adapted weight, [out, in] or [E, out, in]. */
    readonly base: Parameter,
    cfg: LoraConfig,
  ) {
    const stacked = base.stacked !== undefined;
    const [out, inF] = base.shape.slice(stacked ? 1 : 0) as [number, number];
    const lead = stacked ? [base.shape[0]!] : [];
    const opts = { group: 'lora' as const, decay: true, layer: base.layer, ...(stacked ? { stacked: base.stacked } : {}) };
    // Variance of PEFT's kaiming_uniform(a=sqrt(5)) init of A: uniform with bound 1/sqrt(in).
    this.a = f.make(adapterName(base, 'A'), [...lead, cfg.rank, inF], { kind: 'normal', std: 1 / Math.sqrt(3 * inF) }, opts);
    this.b = f.make(adapterName(base, 'B'), [...lead, out, cfg.rank], { kind: 'constant', value: 0 }, opts);
    this.scale = cfg.alpha / cfg.rank;
  }

  /** y + scale (x Aᵀ) Bᵀ, for a dense projection's output y. */
  addTo(y: Var, x: Var): Var {
    return loraDense(y, x, this.a, this.b, this.scale);
  }

  /** The same per expert, on expert-contiguous rows (layers/moe.ts). */
  addToGrouped(y: Var, xs: Var, plan: DispatchPlan): Var {
    return loraGrouped(y, xs, this.a, this.b, this.scale, plan);
  }
}

/** y + s (x Aᵀ) Bᵀ from the linear ops (their backward gives dA and dB). */
export function loraDense(y: Var, x: Var, a: Var, b: Var, s: number): Var {
  return add(y, scale(linear(linear(x, a, null), b, null, y.data.dtype === 'f16' ? 'f16' : 'f32'), s));
}

/** y + s (x A_eᵀ) B_eᵀ for each expert e's rows, from the grouped-linear op. */
export function loraGrouped(y: Var, xs: Var, a: Var, b: Var, s: number, plan: DispatchPlan): Var {
  return add(y, scale(groupedLinear(groupedLinear(xs, a, plan), b, plan), s));
}

/** A host tensor by state-dict name (src/train/persist/safetensors.ts HostTensor). */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** A parameter's full tensor assembled from its state-dict entries. */
function assemble(p: Parameter, dict: ReadonlyMap<string, NamedTensor>, where: string): Float32Array {
  const out = new Float32Array(p.data.size);
  for (const e of p.stateEntries()) {
    const t = dict.get(e.name);
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (!t || t.data.length !== n)
      throw new Error(`${where}: LoRA merge needs ${e.name} [${e.shape.join(', ')}]${t ? `, the file has [${t.shape.join(', ')}]` : ', which is missing'}`);
    out.set(t.data, e.offset);
  }
  return out;
}

/**
 * W + scale · B A for every adapter, in float64, written back under the base weights' names; the
 * adapter tensors are left out. `adapters` come from a model built with the same LoRA config
 * (a meta-runtime model is enough: only names and shapes are read from it).
 */
export function mergeLora(dict: ReadonlyMap<string, NamedTensor>, adapters: readonly LoraAdapter[], where: string): Map<string, NamedTensor> {
  const out = new Map(dict);
  for (const ad of adapters) {
    const w = assemble(ad.base, dict, where);
    const a = assemble(ad.a, dict, where);
    const b = assemble(ad.b, dict, where);
    const stacked = ad.base.stacked !== undefined;
    const E = stacked ? ad.base.shape[0]! : 1;
    const [rows, cols] = ad.base.shape.slice(stacked ? 1 : 0) as [number, number];
    const r = ad.a.shape[ad.a.shape.length - 2]!;
    for (let e = 0; e < E; e++) {
      const wo = e * rows * cols;
      const ao = e * r * cols;
      const bo = e * rows * r;
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < cols; j++) {
          let s = 0;
          for (let k = 0; k < r; k++) s += b[bo + i * r + k]! * a[ao + k * cols + j]!;
          w[wo + i * cols + j] = w[wo + i * cols + j]! + ad.scale * s;
        }
    }
    for (const e of ad.base.stateEntries()) {
      const n = e.shape.reduce((x, y) => x * y, 1);
      out.set(e.name, { shape: e.shape, data: w.slice(e.offset, e.offset + n) });
    }
    for (const p of [ad.a, ad.b]) for (const e of p.stateEntries()) out.delete(e.name);
  }
  return out;
}
