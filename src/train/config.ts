/**
 * The training configuration: one JSON file, validated by zod. Unknown keys and wrong types fail
 * with the key path, the bad value and what is allowed. `--set path=value` overrides apply to the
 * raw JSON before validation, so they are checked exactly like the file.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ModelSchema, PRESETS } from '../model/config.ts';
import { DataConfigSchema } from './data/config.ts';
import { KernelFamilyChoiceSchema } from '../kernels/caps.ts';
import { FreezeGroupSchema, fineTuneProblems } from '../model/freeze.ts';
import { LoraSchema } from '../model/lora.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const OptimSchema = z
  .object({
    lr: z.number().positive().max(10),
    /** Floor of the cosine decay, as a fraction of lr. */
    minLrRatio: z.number().min(0).max(1).default(0.1),
    weightDecay: z.number().min(0).default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    eps: z.number().positive().default(1e-8),
    /** Global-norm clip; 0 disables clipping (the norm is still measured and logged). */
    clipNorm: z.number().min(0).default(1.0),
    /**
     * 'host': f32 master weights and AdamW moments in host memory, updated by worker threads; the
     * GPU keeps working weights (f16 with f16 activations) and gradients (src/optim/host-adamw.ts).
     */
    offload: z.enum(['none', 'host']).default('none'),
    /**
     * Parameter groups kept fixed (fine-tuning): no gradient, no update, no AdamW moments
     * (src/model/freeze.ts). 'backbone' is every group but 'head'.
     */
    freeze: z.array(FreezeGroupSchema).default([]),
    /** Low-rank adapters on the named projections; their base weights are frozen (src/model/lora.ts). */
    lora: LoraSchema.optional(),
  })
  .strict();

const ScheduleSchema = z
  .object({
    /** Optimizer steps. */
    steps: z.number().int().positive(),
    warmupSteps: z.number().int().min(0).default(0),
    decay: z.enum(['cosine', 'constant']).default('cosine'),
    /** Sequences per micro-step. */
    microBatch: z.number().int().positive(),
    /** Micro-steps per optimizer step (gradient accumulation). */
    accumulation: z.number().int().positive().default(1),
    /** Activation recomputation: keep only each decoder layer's input, re-run it in backward. */
    recompute: z.boolean().default(false),
  })
  .strict();

const LossSchema = z
  .object({
    huberDelta: z.number().positive().default(2.0),
    /** Target aux-loss factor (Time-MoE: 0.02). */
    auxFactor: z.number().min(0).default(0.02),
    /** 'pooled' = HF/Time-MoE (balanced = k), 'switch' = per-layer Switch mean (balanced = 1). */
    auxConvention: z.enum(['pooled', 'switch']).default('pooled'),
    /** The aux factor ramps linearly from auxStart to auxFactor over this many optimizer steps. */
    auxWarmupSteps: z.number().int().min(0).default(0),
    auxStart: z.number().min(0).default(0),
    /** ST-MoE router z-loss coefficient (1e-3 typical); 0 = off. */
    zCoef: z.number().min(0).default(0),
  })
  .strict();

const StabilitySchema = z
  .object({
    /** Per-layer isfinite guards on forward outputs, router logits and gradients. */
    guards: z.boolean().default(true),
    /** Stop (saving the last good state) after this many consecutive skipped steps. */
    maxConsecutiveBadSteps: z.number().int().positive().default(5),
    /**
     * The run has diverged when a validation loss exceeds this many times the loss before training
     * (or is not finite; src/train/run/divergence.ts). 0 = only non-finite counts.
     */
    divergenceFactor: z.number().min(0).default(2),
    /** Fault injection for experiments/tests: NaN written into one activation at one step. */
    injectNan: z
      .object({
        step: z.number().int().positive(),
        /** Keep injecting through this step (default: only `step`). */
        untilStep: z.number().int().positive().optional(),
        layer: z.number().int().min(0),
        /** A forward activation of that layer, or 'grad': the gradient of the layer's first parameter. */
        site: z.enum(['attn_out', 'router_logits', 'ffn_out', 'output', 'grad']),
      })
      .strict()
      .optional(),
  })
  .strict();

const PrecisionSchema = z
  .object({
    /**
     * Storage of activations and their gradients. 'f16' (needs shader-f16): f16 activations and
     * matmul inputs, f32 accumulation, f32 master weights/gradients/AdamW state, router softmax
     * and losses in f32, with dynamic loss scaling.
     */
    activations: z.enum(['f32', 'f16']).default('f32'),
    /** Loss scale at the start (f16 only; a power of two keeps the scaling exact). */
    initialScale: z.number().min(1).max(2 ** 24).default(2 ** 16),
    /** Double the scale after this many optimizer steps without overflow (f16 only). */
    growthInterval: z.number().int().positive().default(200),
    /** Overflow skips stop halving here; overflows at this scale count as bad steps (f16 only). */
    minScale: z.number().min(2 ** -24).default(1),
  })
  .strict();

const LoggingSchema = z
  .object({
    /** Run directory: metrics.jsonl, checkpoints, plan. */
    dir: z.string().min(1).default('runs/default'),
    /** Validate every N optimizer steps (and at the end); 0 = only at the end. */
    validEvery: z.number().int().min(0).default(50),
    /** Validation batches per evaluation; 0 = all. */
    validBatches: z.number().int().min(0).default(8),
    progress: z.enum(['auto', 'bar', 'plain', 'none']).default('auto'),
    /**
     * Read the step metrics every N optimizer steps (1 = every step). With N > 1 the next steps are
     * recorded while earlier ones run; a non-finite gradient is then not named.
     */
    metricsEvery: z.number().int().positive().default(1),
  })
  .strict();

const CheckpointSchema = z
  .object({
    /** Save every N optimizer steps (and at the end); 0 = only at the end. */
    every: z.number().int().min(0).default(0),
    keep: z.number().int().positive().default(3),
  })
  .strict();

const DeviceSchema = z
  .object({
    /**
     * Kernel family: 'auto' = the adapter's own (the CPU family on lavapipe, the GPU family on a
     * GPU), or force 'cpu' / 'gpu' on any adapter. WEBGPU_MOE_KERNELS does the same from the environment.
     */
    kernels: KernelFamilyChoiceSchema.default('auto'),
    /**
     * GPU family on a GPU: time the tiled matmul variants for the step's shapes before training
     * (cached on disk per adapter, src/kernels/matmul-tune.ts). Off: the default tile.
     */
    autotune: z.boolean().default(true),
  })
  .strict();

export const TrainConfigSchema = z
  .object({
    seed: z.number().int().min(0).default(0),
    model: ModelSchema,
    data: DataConfigSchema,
    optim: OptimSchema,
    schedule: ScheduleSchema,
    loss: LossSchema.prefault({}),
    stability: StabilitySchema.prefault({}),
    precision: PrecisionSchema.prefault({}),
    logging: LoggingSchema.prefault({}),
    checkpoint: CheckpointSchema.prefault({}),
    device: DeviceSchema.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const longest = Math.max(...c.model.horizons);
    if (c.model.task === 'forecast' && longest > c.data.contextLength) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'horizons'],
        message: `horizon ${longest} is longer than data.contextLength ${c.data.contextLength}: drop it from model.horizons or raise the context (--set data.contextLength=${longest})`,
      });
    }
    if (c.precision.minScale > c.precision.initialScale)
      ctx.addIssue({ code: 'custom', path: ['precision', 'minScale'], message: `${c.precision.minScale} exceeds precision.initialScale ${c.precision.initialScale}: lower it (--set precision.minScale=1) or raise precision.initialScale` });
    if (c.optim.offload === 'host' && c.logging.metricsEvery !== 1)
      ctx.addIssue({ code: 'custom', path: ['logging', 'metricsEvery'], message: `optim.offload "host" updates the weights on the host between steps, so steps cannot be recorded ahead: set logging.metricsEvery to 1 (got ${c.logging.metricsEvery})` });
    for (const problem of fineTuneProblems(c.optim.freeze, c.optim.lora, c.model.sharedIntermediate > 0)) ctx.addIssue({ code: 'custom', path: ['optim', problem.key], message: problem.message });
    if (c.schedule.warmupSteps > c.schedule.steps)
      ctx.addIssue({
        code: 'custom',
        path: ['schedule', 'warmupSteps'],
        message: `${c.schedule.warmupSteps} exceeds schedule.steps ${c.schedule.steps}: lower it (--set schedule.warmupSteps=${Math.floor(c.schedule.steps / 10)}) or raise schedule.steps (--set schedule.steps=${c.schedule.warmupSteps * 10})`,
      });
  });

export type TrainConfig = z.output<typeof TrainConfigSchema>;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function get(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; options?: z.ZodType[]; values?: unknown[] };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Keys of the object schema at `path`, seen through defaults, optionals and unions (of a union, the branch whose `kind` the value has). */
function allowedKeys(schema: z.ZodType, path: readonly PropertyKey[], raw: unknown): string[] {
  const unwrap = (s: z.ZodType): z.ZodType[] => {
    const d = defOf(s);
    if (d.innerType) return unwrap(d.innerType);
    if (d.options) return d.options.flatMap(unwrap);
    return [s];
  };
  let cur = unwrap(schema);
  for (const key of path) {
    cur = cur.flatMap((s) => {
      const child = defOf(s).shape?.[String(key)];
      return child ? unwrap(child) : [];
    });
  }
  // A discriminated union (data.source): only the keys of the kind the config names.
  const kind = get(raw, [...path, 'kind']);
  const branch = cur.filter((s) => {
    const k = defOf(s).shape?.kind;
    return k !== undefined && defOf(k).values?.includes(kind);
  });
  if (branch.length) cur = branch;
  return [...new Set(cur.flatMap((s) => Object.keys(defOf(s).shape ?? {})))];
}

const withArticle = (t: string): string => {
  const name = t === 'int' ? 'integer' : t;
  return `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name}`;
};

/** What the schema wanted, in words: "a number > 0", "one of "auto", "bar"", "a string or an integer". */
function expectation(iss: z.core.$ZodIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      return withArticle(iss.expected);
    case 'too_small':
    case 'too_big': {
      const op = iss.code === 'too_small' ? (iss.inclusive ? '>=' : '>') : iss.inclusive ? '<=' : '<';
      const bound = iss.code === 'too_small' ? iss.minimum : iss.maximum;
      if (iss.origin === 'array') return `${iss.code === 'too_small' ? 'at least' : 'at most'} ${bound} item(s)`;
      if (iss.origin === 'string') return `${iss.code === 'too_small' ? 'at least' : 'at most'} ${bound} character(s)`;
      return `a number ${op} ${bound}`;
    }
    case 'invalid_value':
      return `one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      if (iss.errors.length) return [...new Set(iss.errors.map((b) => (b[0] ? expectation(b[0]) : 'something else')))].join(' or ');
      return (iss as { options?: unknown[] }).options ? `one of ${(iss as { options: unknown[] }).options.map((v) => JSON.stringify(v)).join(', ')}` : iss.message;
    default:
      return iss.message;
  }
}

/**
 * One line per problem, each naming the key, what was wanted and what it got, e.g.
 * `model.hidden: expected a number, got "64"`; then how to fix it.
 */
export function formatIssues(error: z.ZodError, raw: unknown, source: string): string {
  const lines = error.issues.map((iss) => {
    const path = iss.path.map(String).join('.') || '(top level)';
    const value = get(raw, iss.path);
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeys(TrainConfigSchema, iss.path, raw);
      const keys = iss.keys.map((k) => (path === '(top level)' ? k : `${path}.${k}`)).join(', ');
      return `${keys}: unknown key${iss.keys.length > 1 ? 's' : ''}${allowed.length ? ` (allowed here: ${allowed.join(', ')})` : ''}`;
    }
    // Cross-field checks write their own message, naming both values and the fix.
    if (iss.code === 'custom') return `${path}: ${iss.message}`;
    if (value === undefined) return `${path}: required (${expectation(iss)}) but missing`;
    const unset = value === null ? ` (null is a value, not "unset": to leave ${path} unset, remove the key)` : '';
    return `${path}: expected ${expectation(iss)}, got ${describe(value)}${unset}`;
  });
  return `invalid config ${source}:\n  ${lines.join('\n  ')}\nFix the key(s) in ${source}, or override a value with --set <path>=<value> (node train.js --help)`;
}

/** Apply `a.b.c=value` (value parsed as JSON when it parses, else taken as a string). */
export function applyOverride(raw: Record<string, Json>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set ${assignment}: expected path=value, e.g. --set optim.lr=3e-4`);
  const path = assignment.slice(0, eq).split('.');
  const text = assignment.slice(eq + 1);
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    value = text;
  }
  let cur: Record<string, Json> = raw;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === undefined) cur[key] = {};
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new ConfigError(`--set ${assignment}: ${key} is not an object in the config`);
    cur = cur[key] as Record<string, Json>;
  }
  cur[path[path.length - 1]!] = value;
}

/**
 * Expand `model.preset` into the preset's dimensions, with the file's keys taking precedence. A
 * model whose dimensions differ from the preset's is no longer that preset: it becomes "custom", so
 * the plan and the checkpoints do not call a 30k-parameter model "timemoe-50m".
 */
function expandPreset(raw: Record<string, Json>): void {
  const m = raw.model;
  if (!m || typeof m !== 'object' || Array.isArray(m)) return;
  const name = m.preset;
  if (typeof name !== 'string' || !(name in PRESETS)) return;
  const preset = PRESETS[name as keyof typeof PRESETS] as Record<string, Json>;
  const changed = Object.keys(preset).some((k) => k !== 'preset' && k in m && JSON.stringify(m[k]) !== JSON.stringify(preset[k]));
  raw.model = { ...preset, ...m, ...(changed ? { preset: 'custom' } : {}) };
}

export function parseConfig(raw: unknown, source = '(inline)', overrides: readonly string[] = []): TrainConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`invalid config ${source}: the top level must be a JSON object`);
  const obj = structuredClone(raw) as Record<string, Json>;
  for (const o of overrides) applyOverride(obj, o);
  expandPreset(obj);
  const r = TrainConfigSchema.safeParse(obj);
  if (!r.success) throw new ConfigError(formatIssues(r.error, obj, source));
  return r.data;
}

export function loadConfig(path: string, overrides: readonly string[] = []): TrainConfig {
  const full = resolve(path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`config file not found: ${full} (check the --config path)`);
    if (code === 'EISDIR') throw new ConfigError(`--config ${path} is a folder, not a file: pass the JSON file (e.g. --config ${join(path, 'small-moe.json')})`);
    throw new ConfigError(`cannot read config ${full} (${code ?? (e as Error).message}): check the file's permissions, or the --config path`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${full} is not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(raw, full, overrides);
}
