/**
 * Hugging Face Time-MoE `config.json` <-> our model config. The keys and defaults are those of
 * Time-MoE's TimeMoeConfig (DESIGN §5). Two facts of that model fix how dimensions map:
 *   - each routed expert has intermediate_size // num_experts_per_tok hidden units and the one
 *     shared expert has intermediate_size, so our (moeIntermediate, sharedIntermediate) must be
 *     (intermediate_size // topK, intermediate_size);
 *   - routing is dropless and the top-k weights are not renormalised.
 * A model outside that family (no shared expert, capacity factor, renormalised top-k, classifier)
 * cannot be exported, and a config.json outside what we implement (dense FFN, grouped KV heads,
 * another activation, input_size > 1) cannot be imported: both say which key and why.
 */
import { z } from 'zod';
import { modelConfig, type ModelConfig } from '../../model/config.ts';

/**
 * Time-MoE's own defaults for keys a config.json may leave out (TimeMoeConfig.__init__). The
 * structural keys have no default here: a file without them is not a Time-MoE config.
 */
export const HfTimeMoeConfigSchema = z
  .object({
    model_type: z.literal('time_moe'),
    input_size: z.number().int().positive().default(1),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    horizon_lengths: z.union([z.number().int().positive(), z.array(z.number().int().positive()).min(1)]).transform((h) => (Array.isArray(h) ? h : [h])),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullable().default(null),
    hidden_act: z.string().default('silu'),
    num_experts_per_tok: z.number().int().positive(),
    num_experts: z.number().int().positive(),
    max_position_embeddings: z.number().int().positive().default(32768),
    initializer_range: z.number().nonnegative().default(0.02),
    rms_norm_eps: z.number().positive().default(1e-6),
    use_cache: z.boolean().default(true),
    use_dense: z.boolean().default(false),
    rope_theta: z.number().positive().default(10000),
    attention_dropout: z.number().min(0).max(1).default(0),
    apply_aux_loss: z.boolean().default(true),
    router_aux_loss_factor: z.number().min(0).default(0.02),
    tie_word_embeddings: z.boolean().default(false),
  })
  // PretrainedConfig writes more keys (architectures, torch_dtype, transformers_version, ...).
  .loose();

export type HfTimeMoeConfig = z.output<typeof HfTimeMoeConfigSchema>;

/** A config.json or model config that the other side cannot represent; one line per problem. */
export class HfConfigError extends Error {
  constructor(
    readonly where: string,
    readonly problems: readonly string[],
  ) {
    super(`${where}:\n  ${problems.join('\n  ')}`);
    this.name = 'HfConfigError';
  }
}

/** Parse a config.json's JSON value; every schema problem becomes one line naming the key. */
export function parseHfConfig(raw: unknown, where: string): HfTimeMoeConfig {
  const r = HfTimeMoeConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new HfConfigError(
      `${where} is not a Time-MoE config.json`,
      r.error.issues.map(
        (i) => `${i.path.join('.') || '(top level)'}: ${i.message}${i.path[0] === 'model_type' ? ' (Time-MoE folders have "model_type": "time_moe")' : ''}`,
      ),
    );
  }
  return r.data;
}

/** What our engine cannot run of a (valid) Time-MoE config. */
function unsupported(c: HfTimeMoeConfig): string[] {
  const out: string[] = [];
  if (c.input_size !== 1) out.push(`input_size ${c.input_size}: this engine forecasts univariate series (input_size 1)`);
  if (c.use_dense) out.push('use_dense true: this engine implements the sparse MoE FFN only (use_dense false)');
  if (c.hidden_act !== 'silu') out.push(`hidden_act "${c.hidden_act}": this engine implements "silu" (SwiGLU) only`);
  if (c.num_key_value_heads !== null && c.num_key_value_heads !== c.num_attention_heads)
    out.push(`num_key_value_heads ${c.num_key_value_heads} differs from num_attention_heads ${c.num_attention_heads}: grouped KV heads are not implemented`);
  if (c.tie_word_embeddings) out.push('tie_word_embeddings true: Time-MoE heads are never tied; the file is not a Time-MoE forecaster');
  if (c.num_experts_per_tok > c.num_experts) out.push(`num_experts_per_tok ${c.num_experts_per_tok} exceeds num_experts ${c.num_experts}`);
  if (c.intermediate_size < c.num_experts_per_tok)
    out.push(`intermediate_size ${c.intermediate_size} leaves experts no hidden units (intermediate_size // num_experts_per_tok = 0)`);
  return out;
}

/** The model config a Time-MoE config.json describes (init settings at their defaults). */
export function modelFromHf(c: HfTimeMoeConfig, where: string): ModelConfig {
  const problems = unsupported(c);
  if (problems.length) throw new HfConfigError(`${where} describes a model this engine cannot run`, problems);
  try {
    return modelConfig({
      hidden: c.hidden_size,
      layers: c.num_hidden_layers,
      heads: c.num_attention_heads,
      experts: c.num_experts,
      topK: c.num_experts_per_tok,
      moeIntermediate: Math.floor(c.intermediate_size / c.num_experts_per_tok),
      sharedIntermediate: c.intermediate_size,
      horizons: c.horizon_lengths,
      ropeTheta: c.rope_theta,
      rmsEps: c.rms_norm_eps,
      normTopkProb: false,
      capacityFactor: null,
      task: 'forecast',
    });
  } catch (e) {
    if (e instanceof z.ZodError)
      throw new HfConfigError(
        `${where} describes a model this engine cannot run`,
        e.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      );
    throw e;
  }
}

/**
 * Time-MoE's released configs use 4096 positions. Our attention has no position limit (RoPE is
 * computed for any length), so this only tells HF code how far it may generate.
 */
export const EXPORT_MAX_POSITIONS = 4096;

/** config.json for a model config; `auxFactor` is the training loss's aux factor. */
export function hfFromModel(m: ModelConfig, opts: { auxFactor: number; contextLength?: number }, where: string): Record<string, unknown> {
  const problems: string[] = [];
  if (m.task !== 'forecast') problems.push(`model.task "${m.task}": Time-MoE's TimeMoeForPrediction has forecasting heads only, no classifier`);
  if (m.sharedIntermediate === 0) problems.push('model.sharedIntermediate 0: every Time-MoE layer has a shared expert (intermediate_size hidden units)');
  else if (m.moeIntermediate !== Math.floor(m.sharedIntermediate / m.topK))
    problems.push(
      `model.moeIntermediate ${m.moeIntermediate} with sharedIntermediate ${m.sharedIntermediate} and topK ${m.topK}: Time-MoE sizes each expert intermediate_size // num_experts_per_tok, so moeIntermediate must be ${Math.floor(m.sharedIntermediate / m.topK)}`,
    );
  if (m.normTopkProb) problems.push('model.normTopkProb true: Time-MoE does not renormalise the top-k weights');
  if (m.capacityFactor !== null) problems.push(`model.capacityFactor ${m.capacityFactor}: Time-MoE routing is dropless (capacityFactor null)`);
  if (problems.length) throw new HfConfigError(`${where}: this model has no Hugging Face Time-MoE equivalent`, problems);
  return {
    architectures: ['TimeMoeForPrediction'],
    model_type: 'time_moe',
    input_size: 1,
    hidden_size: m.hidden,
    intermediate_size: m.sharedIntermediate,
    horizon_lengths: [...m.horizons],
    num_hidden_layers: m.layers,
    num_attention_heads: m.heads,
    num_key_value_heads: m.heads,
    hidden_act: 'silu',
    num_experts_per_tok: m.topK,
    num_experts: m.experts,
    max_position_embeddings: Math.max(EXPORT_MAX_POSITIONS, opts.contextLength ?? 0),
    initializer_range: m.init.std,
    rms_norm_eps: m.rmsEps,
    use_cache: true,
    use_dense: false,
    rope_theta: m.ropeTheta,
    attention_dropout: 0.0,
    // TimeMoeConfig asserts use_dense XOR apply_aux_loss, so a sparse model always has it on.
    apply_aux_loss: true,
    router_aux_loss_factor: opts.auxFactor,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
  };
}

/** Our config keys beside the config.json key they must equal. */
const COMPARED: readonly { ours: keyof ModelConfig; hf: string; value: (c: HfTimeMoeConfig, m: ModelConfig) => unknown }[] = [
  { ours: 'hidden', hf: 'hidden_size', value: (c) => c.hidden_size },
  { ours: 'layers', hf: 'num_hidden_layers', value: (c) => c.num_hidden_layers },
  { ours: 'heads', hf: 'num_attention_heads', value: (c) => c.num_attention_heads },
  { ours: 'experts', hf: 'num_experts', value: (c) => c.num_experts },
  { ours: 'topK', hf: 'num_experts_per_tok', value: (c) => c.num_experts_per_tok },
  { ours: 'moeIntermediate', hf: 'intermediate_size // num_experts_per_tok', value: (c) => Math.floor(c.intermediate_size / c.num_experts_per_tok) },
  { ours: 'sharedIntermediate', hf: 'intermediate_size', value: (c) => c.intermediate_size },
  { ours: 'horizons', hf: 'horizon_lengths', value: (c) => c.horizon_lengths },
  { ours: 'ropeTheta', hf: 'rope_theta', value: (c) => c.rope_theta },
  { ours: 'rmsEps', hf: 'rms_norm_eps', value: (c) => c.rms_norm_eps },
  { ours: 'normTopkProb', hf: '(always false in Time-MoE)', value: () => false },
  { ours: 'capacityFactor', hf: '(dropless in Time-MoE)', value: () => null },
  { ours: 'task', hf: '(TimeMoeForPrediction)', value: () => 'forecast' },
];

/**
 * Differences between the training config's model and a folder's config.json, one line each with
 * the --set that fixes it; empty when they describe the same model.
 */
export function compareWithHf(m: ModelConfig, c: HfTimeMoeConfig, ignore: readonly (keyof ModelConfig)[] = []): string[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const out: string[] = [];
  for (const k of COMPARED) {
    if (ignore.includes(k.ours)) continue;
    const want = k.value(c, m);
    if (!same(m[k.ours], want))
      out.push(
        `model.${k.ours} is ${JSON.stringify(m[k.ours])} but config.json has ${k.hf} = ${JSON.stringify(want)}: set model.${k.ours} to ${JSON.stringify(want)} (e.g. --set model.${k.ours}=${JSON.stringify(want)})`,
      );
  }
  return out;
}
