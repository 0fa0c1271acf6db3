/** Model configuration: validated with zod (it comes from user JSON), plus the named presets. */
import { z } from 'zod';
import type { LoraConfig } from './lora.ts';

export const InitSchema = z
  .object({
    /** Std of every Linear not covered below (Time-MoE uses N(0, 0.02) everywhere). */
    std: z.number().positive().default(0.02),
    /** Router std. Small keeps early routing near-uniform (docs/DESIGN.md §7.1); Switch uses sqrt(0.1/fan_in). */
    routerStd: z.number().nonnegative().default(0.006),
    /** Forecast / classification head std (docs/DESIGN.md §7.3: 1.0 explodes the initial loss). */
    headStd: z.number().nonnegative().default(0.02),
    /** Std of both point-embedding Linear(1->d): too small makes the model blind to the sign of x (docs/DESIGN.md §7.6). */
    embeddingStd: z.number().positive().default(0.5),
    /** Scale residual output projections (o_proj, expert down_proj) by 1/sqrt(2*layers) (GPT-2 style). */
    scaleResidualByDepth: z.boolean().default(true),
    /**
     * Start from trained weights instead of the draws above: a Hugging Face Time-MoE folder
     * (config.json + model.safetensors) or one of our checkpoints, relative to the working
     * directory; its config must describe this model (src/train/interop/init-from.ts checks it).
     */
    from: z.string().min(1).optional(),
  })
  .strict();

export const ModelSchema = z
  .object({
    preset: z.enum(['small-moe', 'timemoe-50m', 'timemoe-200m', 'timemoe-2.4b', 'custom']).default('custom'),
    hidden: z.number().int().positive(),
    layers: z.number().int().positive(),
    heads: z.number().int().positive(),
    experts: z.number().int().positive().max(64),
    topK: z.number().int().positive(),
    /** Hidden size of each routed SwiGLU expert. */
    moeIntermediate: z.number().int().positive(),
    /** Hidden size of the shared expert; 0 disables it. */
    sharedIntermediate: z.number().int().nonnegative(),
    horizons: z.array(z.number().int().positive()).min(1).default([1, 8, 32, 64]),
    ropeTheta: z.number().positive().default(10000),
    rmsEps: z.number().positive().default(1e-6),
    /** Renormalise the top-k weights to sum 1 (Mixtral). Time-MoE / Qwen2-MoE do not. */
    normTopkProb: z.boolean().default(false),
    /** Expert capacity factor; null = dropless (default). */
    capacityFactor: z.number().positive().nullable().default(null),
    /** 'classify' replaces the forecasting heads by mean-pool -> Linear(d -> numClasses). */
    task: z.enum(['forecast', 'classify']).default('forecast'),
    numClasses: z.number().int().min(2).optional(),
    init: InitSchema.prefault({}),
  })
  .strict()
  .superRefine((m, ctx) => {
    const fit = [1, 2, 4, 8, 12, 16].filter((h) => m.hidden % h === 0 && (m.hidden / h) % 2 === 0);
    const pick = fit.length ? ` (e.g. ${fit.slice(-2).join(' or ')})` : '';
    if (m.hidden % m.heads !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['heads'],
        message: `hidden ${m.hidden} is not divisible by heads ${m.heads}: pick heads that divide model.hidden${pick}`,
      });
    else if ((m.hidden / m.heads) % 2 !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['heads'],
        message: `head dim ${m.hidden / m.heads} (hidden ${m.hidden} / heads ${m.heads}) must be even for RoPE: change model.heads${pick}`,
      });
    if (m.topK > m.experts)
      ctx.addIssue({ code: 'custom', path: ['topK'], message: `topK ${m.topK} exceeds experts ${m.experts}: lower model.topK or raise model.experts` });
    if (m.task === 'classify' && m.numClasses === undefined)
      ctx.addIssue({ code: 'custom', path: ['numClasses'], message: 'task "classify" needs numClasses: set model.numClasses (the number of labels)' });
  });

export type ModelConfig = z.output<typeof ModelSchema>;
export type ModelConfigInput = z.input<typeof ModelSchema>;

const TIMEMOE_COMMON = { layers: 12, heads: 12, experts: 8, topK: 2, horizons: [1, 8, 32, 64] } as const;

export const PRESETS: Record<'small-moe' | 'timemoe-50m' | 'timemoe-200m' | 'timemoe-2.4b', ModelConfigInput> = {
  /** Trains in minutes on lavapipe. */
  'small-moe': {
    preset: 'small-moe',
    hidden: 64,
    layers: 2,
    heads: 4,
    experts: 4,
    topK: 2,
    moeIntermediate: 128,
    sharedIntermediate: 256,
    horizons: [1, 8, 32],
  },
  /** TimeMoE-50M: 113,352,192 parameters. */
  'timemoe-50m': {
    preset: 'timemoe-50m',
    ...TIMEMOE_COMMON,
    horizons: [...TIMEMOE_COMMON.horizons],
    hidden: 384,
    moeIntermediate: 768,
    sharedIntermediate: 1536,
  },
  /** TimeMoE-200M: 453,196,800 parameters. */
  'timemoe-200m': {
    preset: 'timemoe-200m',
    ...TIMEMOE_COMMON,
    horizons: [...TIMEMOE_COMMON.horizons],
    hidden: 768,
    moeIntermediate: 1536,
    sharedIntermediate: 3072,
  },
  /**
   * Time-MoE ultra: 2,416,545,792 parameters, 1,057,591,296 active. Experts use intermediate_size
   * 4096 // top-k = 2048, the shared expert 4096 (docs/DESIGN.md §5).
   */
  'timemoe-2.4b': {
    preset: 'timemoe-2.4b',
    ...TIMEMOE_COMMON,
    horizons: [...TIMEMOE_COMMON.horizons],
    layers: 36,
    heads: 16,
    hidden: 1024,
    moeIntermediate: 2048,
    sharedIntermediate: 4096,
  },
};

export function modelConfig(input: ModelConfigInput): ModelConfig {
  return ModelSchema.parse(input);
}

export function preset(name: keyof typeof PRESETS, overrides: Partial<ModelConfigInput> = {}): ModelConfig {
  return modelConfig({ ...PRESETS[name], ...overrides });
}

/** Parameter counts by group, from the config alone (the memory planner uses this too). */
export function countParameters(m: ModelConfig): { total: number; active: number; groups: Record<string, number> } {
  const d = m.hidden;
  const attention = 3 * (d * d + d) + d * d;
  const norms = 2 * d;
  const router = m.experts * d;
  const expert = 3 * d * m.moeIntermediate;
  const shared = m.sharedIntermediate > 0 ? 3 * d * m.sharedIntermediate + d : 0;
  const heads = m.task === 'classify' ? d * (m.numClasses ?? 0) + (m.numClasses ?? 0) : d * m.horizons.reduce((a, b) => a + b, 0);
  const groups = {
    embedding: 2 * d,
    attention: m.layers * attention,
    norm: m.layers * norms + d,
    router: m.layers * router,
    experts: m.layers * m.experts * expert,
    shared_expert: m.layers * shared,
    head: heads,
  };
  const total = Object.values(groups).reduce((a, b) => a + b, 0);
  const active = total - m.layers * (m.experts - m.topK) * expert;
  return { total, active, groups };
}

/** A projection optim.lora adapts: its Hugging Face name pattern, its [out, in] and how many copies the model holds. */
export interface AdaptedLayer {
  name: string;
  in: number;
  out: number;
  copies: number;
}

/**
 * The weights optim.lora.targets adapt in this model (src/model/time-moe.ts adapt()): attention
 * q/k/v/o, and gate|up (one fused [2H, d] weight) and down of every routed expert and of the
 * shared expert.
 */
export function adaptedLayers(m: ModelConfig, targets: LoraConfig['targets']): AdaptedLayer[] {
  const d = m.hidden;
  const want = new Set<string>(targets);
  const out: AdaptedLayer[] = [];
  for (const t of ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const)
    if (want.has(t)) out.push({ name: `model.layers.*.self_attn.${t}`, in: d, out: d, copies: m.layers });
  if (want.has('gate_proj')) {
    out.push({
      name: 'model.layers.*.ffn_layer.experts.*.gate_proj + up_proj (one fused weight)',
      in: d,
      out: 2 * m.moeIntermediate,
      copies: m.layers * m.experts,
    });
    if (m.sharedIntermediate > 0)
      out.push({
        name: 'model.layers.*.ffn_layer.shared_expert.gate_proj + up_proj (one fused weight)',
        in: d,
        out: 2 * m.sharedIntermediate,
        copies: m.layers,
      });
  }
  if (want.has('down_proj')) {
    out.push({ name: 'model.layers.*.ffn_layer.experts.*.down_proj', in: m.moeIntermediate, out: d, copies: m.layers * m.experts });
    if (m.sharedIntermediate > 0) out.push({ name: 'model.layers.*.ffn_layer.shared_expert.down_proj', in: m.sharedIntermediate, out: d, copies: m.layers });
  }
  return out;
}

/** Parameters of the adapters: A [rank, in] and B [out, rank] per adapted weight. */
export function loraParameterCount(m: ModelConfig, lora: LoraConfig): number {
  return adaptedLayers(m, lora.targets).reduce((a, l) => a + l.copies * lora.rank * (l.in + l.out), 0);
}

/**
 * A rank above min(in, out) of an adapted weight cannot add capacity (B A has rank at most
 * min(in, out)): it only adds parameters. Returns the message for the narrowest targeted weight,
 * or null when the rank fits every one.
 */
export function loraRankProblem(m: ModelConfig, lora: LoraConfig): string | null {
  const layers = adaptedLayers(m, lora.targets);
  if (!layers.length) return null;
  const narrowest = layers.reduce((a, b) => (Math.min(b.in, b.out) < Math.min(a.in, a.out) ? b : a));
  const width = Math.min(narrowest.in, narrowest.out);
  if (lora.rank <= width) return null;
  return `rank ${lora.rank} exceeds the width of ${narrowest.name}: in ${narrowest.in}, out ${narrowest.out}, so B·A can have rank ${width} at most and the rest only adds parameters. Use a rank up to ${width} (e.g. --set optim.lora.rank=${Math.min(width, 8)}), or leave that projection out of optim.lora.targets`;
}
