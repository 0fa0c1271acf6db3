/**
 * The training configuration: one JSON file, validated by zod. Unknown keys and wrong types fail
 * with the key path, the bad value and what is allowed. `--set path=value` overrides apply to the
 * raw JSON before validation, so they are checked exactly like the file. Platform-free (the
 * browser parses its config here too); reading the file is config-file.ts's.
 */
import { z } from 'zod';
import { ModelSchema, PRESETS, loraRankProblem } from '../model/config.ts';
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
    initialScale: z
      .number()
      .min(1)
      .max(2 ** 24)
      .default(2 ** 16),
    /** Double the scale after this many optimizer steps without overflow (f16 only). */
    growthInterval: z.number().int().positive().default(200),
    /** Overflow skips stop halving here; overflows at this scale count as bad steps (f16 only). */
    minScale: z
      .number()
      .min(2 ** -24)
      .default(1),
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
      ctx.addIssue({
        code: 'custom',
        path: ['precision', 'minScale'],
        message: `${c.precision.minScale} exceeds precision.initialScale ${c.precision.initialScale}: lower it (--set precision.minScale=1) or raise precision.initialScale`,
      });
    if (c.optim.offload === 'host' && c.logging.metricsEvery !== 1)
      ctx.addIssue({
        code: 'custom',
        path: ['logging', 'metricsEvery'],
        message: `optim.offload "host" updates the weights on the host between steps, so steps cannot be recorded ahead: set logging.metricsEvery to 1 (got ${c.logging.metricsEvery})`,
      });
    for (const problem of fineTuneProblems(c.optim.freeze, c.optim.lora, c.model.sharedIntermediate > 0))
      ctx.addIssue({ code: 'custom', path: ['optim', problem.key], message: problem.message });
    const rank = c.optim.lora ? loraRankProblem(c.model, c.optim.lora) : null;
    if (rank) ctx.addIssue({ code: 'custom', path: ['optim', 'lora', 'rank'], message: rank });
    if (c.schedule.warmupSteps > c.schedule.steps)
      ctx.addIssue({
        code: 'custom',
        path: ['schedule', 'warmupSteps'],
        message: `${c.schedule.warmupSteps} exceeds schedule.steps ${c.schedule.steps}: lower it (--set schedule.warmupSteps=${Math.floor(c.schedule.steps / 10)}) or raise schedule.steps (--set schedule.steps=${c.schedule.warmupSteps * 10})`,
      });
  });

export type TrainConfig = z.output<typeof TrainConfigSchema>;

/**
 * What `--resume` may change (docs/CONFIG.md "Resuming with a changed config"). A key is matched
 * by itself or by its section. RESUME_FREE: how the run is watched, saved or executed, not what
 * it computes; changed silently. RESUME_NOTED: the learning-rate schedule, clipping and the loss
 * scale's dynamics, changed when extending a run; each change is printed and takes effect from
 * the resumed step. Every other key (seed, model, data, precision.activations, loss, the batch,
 * the AdamW betas, eps and weight decay, freeze, LoRA) is what the run is: a change is refused
 * unless --allow-config-change names it.
 */
export const RESUME_FREE: readonly string[] = ['logging', 'checkpoint', 'device', 'stability', 'optim.offload', 'schedule.recompute', 'model.init.from'];
export const RESUME_NOTED: readonly string[] = [
  'schedule.steps',
  'schedule.warmupSteps',
  'schedule.decay',
  'optim.lr',
  'optim.minLrRatio',
  'optim.clipNorm',
  'precision.initialScale',
  'precision.growthInterval',
  'precision.minScale',
];

/** Does `key` (a dotted path) fall under `entry` (the key itself or a section above it)? */
export const underKey = (key: string, entry: string): boolean => key === entry || key.startsWith(`${entry}.`);

export function resumeClass(key: string): 'free' | 'noted' | 'locked' {
  if (RESUME_FREE.some((e) => underKey(key, e))) return 'free';
  if (RESUME_NOTED.some((e) => underKey(key, e))) return 'noted';
  return 'locked';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A value as shown in messages: JSON, clipped to 60 characters. */
export function describe(v: unknown): string {
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
      return (iss as { options?: unknown[] }).options
        ? `one of ${(iss as { options: unknown[] }).options.map((v) => JSON.stringify(v)).join(', ')}`
        : iss.message;
    default:
      return iss.message;
  }
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) between two short strings. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** Names from other trainers for a key of ours (compared without case, "_" and "-"). */
const SYNONYMS: Record<string, string> = {
  learningrate: 'lr',
  batchsize: 'microBatch',
  microbatchsize: 'microBatch',
  gradientaccumulationsteps: 'accumulation',
  maxsteps: 'steps',
  warmup: 'warmupSteps',
  nexperts: 'experts',
  numexperts: 'experts',
  hiddensize: 'hidden',
  numlayers: 'layers',
  numheads: 'heads',
  topk: 'topK',
};
const squash = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');

/** The allowed key a misspelt one most likely meant: same letters up to case and "_", a synonym (exact), or a small edit away. */
export function closestKey(key: string, allowed: readonly string[]): { key: string; exact: boolean } | null {
  const k = squash(key);
  const same = allowed.find((a) => squash(a) === k) ?? (SYNONYMS[k] && allowed.includes(SYNONYMS[k]) ? SYNONYMS[k] : undefined);
  if (same) return { key: same, exact: true };
  let best: string | null = null;
  let bestD = Infinity;
  for (const a of allowed) {
    const dist = editDistance(k, squash(a));
    if (dist < bestD) [best, bestD] = [a, dist];
  }
  const limit = k.length <= 3 ? 1 : k.length <= 6 ? 2 : 3;
  return best !== null && bestD <= limit ? { key: best, exact: false } : null;
}

/** Every key path of the schema ("optim.lr", "data.source.anomalies.rate"), for "it belongs under ..." hints. */
export function schemaPaths(schema: z.ZodType = TrainConfigSchema): string[] {
  const out = new Set<string>();
  const visit = (s: z.ZodType, path: string): void => {
    const d = defOf(s);
    if (d.innerType) return visit(d.innerType, path);
    if (d.options) return d.options.forEach((o) => visit(o, path));
    if (path) out.add(path);
    for (const [k, v] of Object.entries(d.shape ?? {})) visit(v, path ? `${path}.${k}` : k);
  };
  visit(schema, '');
  return [...out];
}

/**
 * "did you mean optim.lr?" for an unknown key at `parent`: the same key up to spelling at this
 * level, else the key where it lives elsewhere in the schema, else a near miss at this level.
 */
function unknownKeyHint(parent: readonly PropertyKey[], key: string, allowed: readonly string[]): string {
  const here = parent.map(String).join('.');
  const at = (k: string) => (here ? `${here}.${k}` : k);
  const near = closestKey(key, allowed);
  if (near?.exact) return `; did you mean ${at(near.key)}?`;
  const elsewhere = schemaPaths().filter((p) => p !== at(key) && closestKey(key, [p.slice(p.lastIndexOf('.') + 1)])?.exact);
  if (elsewhere.length) return `; did you mean ${elsewhere.join(' or ')}? (${key} is not a key of ${here || 'the top level'})`;
  return near ? `; did you mean ${at(near.key)}?` : '';
}

/** One `--set` applied to the config: the key path it wrote, for naming it in messages. */
export interface SetOrigin {
  path: readonly string[];
  assignment: string;
}

/** An assignment as shown in messages: long values clipped. */
const shownSet = (assignment: string): string => `--set ${assignment.length > 80 ? `${assignment.slice(0, 77)}...` : assignment}`;

/**
 * The --set a problem at `path` comes from: the last one that wrote that key, a key inside it,
 * or an object around it; for a cross-key check, one that wrote a key its message names.
 */
function originOf(path: readonly string[], sets: readonly SetOrigin[], message = ''): SetOrigin | null {
  for (let i = sets.length - 1; i >= 0; i--) {
    const s = sets[i]!;
    const n = Math.min(path.length, s.path.length);
    const nested = path.slice(0, n).every((k, j) => k === s.path[j]) && (path.length > 0 || s.path.length === 0);
    const named = message !== '' && new RegExp(`(^|[^\\w.])${s.path.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\.')}(?![\\w])`).test(message);
    if (nested || named) return s;
  }
  return null;
}

/**
 * One line per problem, each naming the key, what was wanted and what it got, e.g.
 * `model.hidden: expected a number, got "64"`, and the `--set` it came from when one did; then
 * how to fix it: the file's keys, or the --set values named.
 */
export function formatIssues(error: z.ZodError, raw: unknown, source: string, sets: readonly SetOrigin[] = []): string {
  const used = new Set<SetOrigin>();
  let fromFile = false;
  /** `key: problem`, and `(from --set ...)` at the end when a --set gave the value. */
  const tag = (path: readonly string[], key: string, problem: string, message?: string): string => {
    const o = originOf(path, sets, message);
    if (!o) fromFile = true;
    else used.add(o);
    return `${key}: ${problem}${o ? ` (from ${shownSet(o.assignment)})` : ''}`;
  };
  const lines = error.issues.flatMap((iss) => {
    const keyPath = iss.path.map(String);
    const path = keyPath.join('.') || '(top level)';
    const value = get(raw, iss.path);
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeys(TrainConfigSchema, iss.path, raw);
      const list = allowed.length ? ` (allowed here: ${allowed.join(', ')})` : '';
      return iss.keys.map((k) =>
        tag([...keyPath, k], path === '(top level)' ? k : `${path}.${k}`, `unknown key${unknownKeyHint(iss.path, k, allowed)}${list}`),
      );
    }
    // Cross-field checks write their own message, naming both values and the fix.
    if (iss.code === 'custom') return [tag(keyPath, path, iss.message, iss.message)];
    if (value === undefined) return [tag(keyPath, path, `required (${expectation(iss)}) but missing`)];
    const unset = value === null ? ` (null is a value, not "unset": to leave ${path} unset, remove the key)` : '';
    return [tag(keyPath, path, `expected ${expectation(iss)}, got ${describe(value)}${unset}`)];
  });
  const named = [...used].map((o) => shownSet(o.assignment)).join(', ');
  const fix = !used.size
    ? `Fix the key(s) in ${source}, or override a value with --set <path>=<value> (node train.js --help)`
    : fromFile
      ? `Fix the key(s) in ${source}, and ${named}`
      : `Fix ${named}: ${used.size > 1 ? 'these values come' : 'the value comes'} from the command line, not from ${source}`;
  return `invalid config ${source}:\n  ${lines.join('\n  ')}\n${fix}`;
}

/**
 * How deep a config may nest. The schema needs 5 levels (data.source.seasonality.0.period); the limit
 * stops runaway input (structuredClone and zod recurse) with a message instead of a RangeError.
 */
export const MAX_CONFIG_DEPTH = 32;
/** Keys that reach JavaScript's object internals (an assignment to `__proto__` changes every object): never config keys. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const clipPath = (path: readonly string[]): string => {
  const s = path.join('.');
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
};

/**
 * The first problem in a parsed JSON value's shape, or null: a container nested deeper than
 * MAX_CONFIG_DEPTH, or a prototype key. `at` is where the value sits in the config. Iterative, so
 * it cannot overflow the stack itself.
 */
function shapeProblem(value: unknown, at: readonly string[]): string | null {
  const stack: { v: unknown; path: string[] }[] = [{ v: value, path: [...at] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (path.length >= MAX_CONFIG_DEPTH)
      return `nested more than ${MAX_CONFIG_DEPTH} levels deep at ${clipPath(path)}: the schema needs 5 (data.source.seasonality.0.period). Look for a value pasted in by mistake, or brackets that do not close where they should`;
    for (const k of Object.keys(v)) {
      const path2 = [...path, k];
      if (PROTOTYPE_KEYS.has(k))
        return `"${k}" at ${clipPath(path2)} is not a config key: ${[...PROTOTYPE_KEYS].join(', ')} are refused (they would reach JavaScript's object internals). Remove it`;
      stack.push({ v: (v as Record<string, unknown>)[k], path: path2 });
    }
  }
  return null;
}

/**
 * Apply `a.b.c=value` (value parsed as JSON when it parses, else taken as a string); returns the
 * key path it wrote. Prototype keys are refused in the path and in the value.
 */
export function applyOverride(raw: Record<string, Json>, assignment: string): SetOrigin {
  const eq = assignment.indexOf('=');
  const shown = shownSet(assignment);
  if (eq <= 0) throw new ConfigError(`${shown}: expected path=value, e.g. --set optim.lr=3e-4`);
  const path = assignment.slice(0, eq).split('.');
  if (path.some((k) => k === ''))
    throw new ConfigError(
      `${shown}: "${assignment.slice(0, eq)}" has an empty key: write the dotted path of the tables in docs/CONFIG.md, e.g. --set optim.lr=3e-4`,
    );
  const proto = path.find((k) => PROTOTYPE_KEYS.has(k));
  if (proto)
    throw new ConfigError(
      `${shown}: "${proto}" is not a config key: ${[...PROTOTYPE_KEYS].join(', ')} are refused (they would reach JavaScript's object internals). The top-level keys are ${allowedKeys(TrainConfigSchema, [], raw).join(', ')}`,
    );
  const text = assignment.slice(eq + 1);
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    value = text;
  }
  const bad = shapeProblem(value, path);
  if (bad) throw new ConfigError(`${shown}: ${bad.startsWith('nested') ? 'the value is ' : ''}${bad}`);
  let cur: Record<string, Json> = raw;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(cur, key) ? cur[key] : undefined;
    if (next === undefined) cur[key] = {};
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new ConfigError(`${shown}: ${key} is not an object in the config`);
    cur = cur[key] as Record<string, Json>;
  }
  cur[path[path.length - 1]!] = value;
  return { path, assignment };
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
  const bad = shapeProblem(raw, []);
  if (bad) throw new ConfigError(`invalid config ${source}: ${bad}`);
  const obj = structuredClone(raw) as Record<string, Json>;
  const sets = overrides.map((o) => applyOverride(obj, o));
  expandPreset(obj);
  const r = TrainConfigSchema.safeParse(obj);
  if (!r.success) throw new ConfigError(formatIssues(r.error, obj, source, sets));
  return r.data;
}

/**
 * Where `text` stops being JSON: the index of the first character that cannot continue it,
 * text.length when it ends too early, or -1 when it is JSON. V8's JSON.parse names a position
 * for some errors only, and in Node 20 never a line.
 */
export function jsonErrorPosition(text: string): number {
  let i = 0;
  const stack: string[] = [];
  let want: 'value' | 'valueOrEnd' | 'key' | 'keyOrEnd' | 'colon' | 'next' = 'value';
  /** Past a string starting at i; its bad character's index, or -1. */
  const string = (): number => {
    for (i++; i < text.length; i++) {
      const c = text[i]!;
      if (c === '"') return (i++, -1);
      if (c < ' ') return i;
      if (c === '\\') {
        const e = text[++i];
        if (e === undefined) return i;
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) return Math.min(i + 1, text.length);
          i += 4;
        } else if (!'"\\/bfnrt'.includes(e)) return i;
      }
    }
    return i;
  };
  for (;;) {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
    if (i >= text.length) return stack.length === 0 && want === 'next' ? -1 : i;
    const c = text[i]!;
    if (want === 'value' || want === 'valueOrEnd') {
      if (want === 'valueOrEnd' && c === ']') {
        stack.pop();
        i++;
        want = 'next';
      } else if (c === '{' || c === '[') {
        stack.push(c);
        i++;
        want = c === '{' ? 'keyOrEnd' : 'valueOrEnd';
      } else if (c === '"') {
        const bad = string();
        if (bad >= 0) return bad;
        want = 'next';
      } else {
        const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
        if (!m) return i;
        i += m[0].length;
        want = 'next';
      }
    } else if (want === 'key' || want === 'keyOrEnd') {
      if (want === 'keyOrEnd' && c === '}') {
        stack.pop();
        i++;
        want = 'next';
      } else {
        if (c !== '"') return i;
        const bad = string();
        if (bad >= 0) return bad;
        want = 'colon';
      }
    } else if (want === 'colon') {
      if (c !== ':') return i;
      i++;
      want = 'value';
    } else {
      const top = stack[stack.length - 1];
      if (top === undefined) return i;
      if (c === ',') {
        i++;
        want = top === '{' ? 'key' : 'value';
      } else if (c === (top === '{' ? '}' : ']')) {
        stack.pop();
        i++;
      } else return i;
    }
  }
}

/** A JSON.parse error as `file:line:column`, the reason, the line and a caret under the column. */
export function jsonErrorMessage(file: string, text: string, e: Error): string {
  if (text.trim() === '') return `config ${file} is empty: a config is one JSON object (see small-moe.json and docs/CONFIG.md)`;
  let pos = jsonErrorPosition(text);
  if (pos < 0) return `config ${file} is not valid JSON: ${e.message}`;
  // Where the file ends too early: just after its last character, not on the blank lines after it.
  if (pos >= text.length) pos = text.trimEnd().length;
  // V8's reason when it is about this spot ("Expected double-quoted property name"), else the character.
  const v8 = / in JSON at position (\d+)/.exec(e.message);
  const reason =
    pos >= text.trimEnd().length
      ? 'the file ends before the JSON does'
      : v8 && Number(v8[1]) === pos
        ? e.message.slice(0, v8.index)
        : `unexpected ${JSON.stringify(text[pos])}`;
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  const nl = text.indexOf('\n', pos);
  const lineEnd = nl < 0 ? text.length : nl;
  const line = text.slice(0, lineStart).split('\n').length;
  const column = pos - lineStart + 1;
  // A long line is shown around the column.
  const from = Math.max(lineStart, pos - 60);
  const cut = from > lineStart ? '...' : '';
  const shown = text.slice(from, Math.min(lineEnd, from + 120)).replace(/\r$/, '');
  const caret = [...text.slice(from, pos)].map((c) => (c === '\t' ? '\t' : ' ')).join('');
  return `config ${file}:${line}:${column} is not valid JSON: ${reason}\n  ${cut}${shown}\n  ${' '.repeat(cut.length)}${caret}^\nFix the file at line ${line}, column ${column} (JSON has no comments and no trailing commas, and quotes keys and strings with ")`;
}
