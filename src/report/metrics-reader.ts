/**
 * Reads a run's metrics.jsonl back into typed records. The logger writes non-finite numbers as
 * the strings "NaN", "Infinity", "-Infinity" (JSON has no NaN, and NaN logged as 0 hides a dead
 * run, docs/DESIGN.md §7.4): they become numbers again here. Extra keys are tolerated (the logger may
 * grow); the keys the report reads are type-checked, and a bad line is named as file:line.
 * Platform-free (the dashboard page and the browser trainer check records here); reading the
 * file is metrics-file.ts's.
 */
import { z } from 'zod';

/** A number, or one of the three strings the logger writes for a non-finite number. */
const num = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).transform((v): number => (typeof v === 'number' ? v : Number(v)));

const badTensor = z.object({
  name: z.string(),
  layer: z.number().int(),
  nonFinite: num,
  min: num,
  max: num,
  mean: num,
});

/**
 * A layer's routing statistics; null on a step whose forward was not finite (the engine does not
 * make up a distribution from NaN logits). Read back as NaN, so every consumer shows "not
 * available" the way it shows any non-finite number (a gap, a NaN cell, "n/a").
 */
const nullableNum = z.union([num, z.null()]).transform((v): number => (v === null ? NaN : v));
const layerRouting = z.object({
  layer: z.number().int(),
  /** Not available: [] (the expert count is the run's; a chart leaves the step out, the heatmap marks it NaN). */
  load: z.union([z.array(num), z.null()]).transform((v): number[] => v ?? []),
  entropy: nullableNum,
  maxShare: nullableNum,
  dropped: nullableNum.optional(),
  /** The layer's Switch balancing loss (balanced = 1). */
  switchLoss: nullableNum.optional(),
});

const train = z.object({
  kind: z.literal('train'),
  step: z.number().int(),
  microSteps: z.number().int().optional(),
  loss: num,
  lossMain: num,
  headLosses: z.array(num).optional(),
  aux: num,
  z: num,
  lr: num,
  auxFactor: num,
  gradNorm: num,
  gradNormPostClip: num,
  clipCoef: num,
  clippedFraction: num,
  skipped: z.boolean(),
  nonFinite: z.array(badTensor),
  routing: z.array(layerRouting),
  tokens: num.optional(),
  ms: num.optional(),
  liveBytes: num.optional(),
  peakBytes: num.optional(),
  /** f16 activations: the scale the backward was seeded with, and whether the step overflowed. */
  lossScale: num.optional(),
  overflow: z.boolean().optional(),
  scaleEvent: z.string().optional(),
});

const valid = z.object({
  kind: z.literal('valid'),
  step: z.number().int(),
  loss: num,
  lossMain: num,
  horizons: z.array(z.object({ horizon: z.number().int(), mse: num, mae: num })),
  /** Classifiers only. */
  accuracy: num.optional(),
  windows: z.number().int().optional(),
});

export type BadTensorRecord = z.infer<typeof badTensor>;
export type TrainRecord = z.infer<typeof train>;
export type ValidRecord = z.infer<typeof valid>;

export interface RunMetrics {
  train: TrainRecord[];
  valid: ValidRecord[];
}

export class MetricsParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'MetricsParseError';
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(line)'}: ${i.message}`).join('; ');
}

export type MetricsRecord = TrainRecord | ValidRecord;

/**
 * One record as the logger wrote it (numbers or their non-finite spellings): the typed record,
 * null for a kind this reader does not know, or a message naming what is wrong.
 */
export function parseRecord(raw: unknown): MetricsRecord | null | { error: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { error: 'expected a JSON object' };
  const kind = (raw as { kind?: unknown }).kind;
  if (kind === 'train' || kind === 'valid') {
    const r = (kind === 'train' ? train : valid).safeParse(raw);
    return r.success ? r.data : { error: `${kind} record: ${describeIssues(r.error)}` };
  }
  // Unknown kinds are future record types: skip them rather than refuse the whole run.
  return typeof kind === 'string' ? null : { error: 'missing string "kind"' };
}

/** Parse JSONL text; `source` names it in errors. Blank lines and lines of other kinds are skipped. */
export function parseMetrics(text: string, source = '<metrics>'): RunMetrics {
  const out: RunMetrics = { train: [], valid: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      throw new MetricsParseError(source, i + 1, `not valid JSON (${(e as Error).message})`);
    }
    const r = parseRecord(raw);
    if (r === null) continue;
    if ('error' in r) throw new MetricsParseError(source, i + 1, r.error);
    if (r.kind === 'train') out.train.push(r);
    else out.valid.push(r);
  }
  return out;
}
