/**
 * The data forecast.js reads: the same sources as training (a data set name, a .csv / .tsv /
 * .json / .jsonl file), through the training data pipeline (src/train/data: loading, cleaning,
 * the time-ordered split and the per-window normalisation are reused, not re-implemented).
 */
import { extname } from 'node:path';
import { z } from 'zod';
import { DATASET_NAMES, DataConfigSchema, SourceSchema, parseDataConfig, type DataConfig, type SourceConfig } from '../train/data/index.ts';
import { meanStd, normScale } from '../train/data/index.ts';
import { ForecastError } from './errors.ts';

export interface DataFlags {
  data?: string;
  column?: string;
  timeColumn?: string;
  idColumn?: string;
  field?: string;
}

/** A CSV column flag: a 0-based index when it is all digits, else a header name. */
function columnRef(v: string): string | number {
  return /^\d+$/.test(v) ? Number(v) : v;
}

/** --data and its column flags as a training data source (validated by the training schema). */
export function sourceFromFlags(f: DataFlags & { data: string }): SourceConfig {
  const spec = f.data;
  const ext = extname(spec).toLowerCase();
  const csvOnly = (['column', 'timeColumn', 'idColumn'] as const).filter((k) => f[k] !== undefined);
  let raw: Record<string, unknown>;
  if ((DATASET_NAMES as readonly string[]).includes(spec)) {
    if (csvOnly.length || f.field)
      throw new ForecastError(
        `--data ${spec} is a built-in data set with its own columns: leave out ${[...csvOnly, ...(f.field ? ['field'] : [])].map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
      );
    raw = { kind: 'dataset', name: spec };
  } else if (ext === '.csv' || ext === '.tsv') {
    if (f.field) throw new ForecastError('--field applies to .json / .jsonl files; for a CSV file use --column');
    raw = {
      kind: 'csv',
      path: spec,
      ...(ext === '.tsv' ? { delimiter: '\t' } : {}),
      ...(f.column !== undefined ? { column: columnRef(f.column) } : {}),
      ...(f.timeColumn !== undefined ? { timeColumn: columnRef(f.timeColumn) } : {}),
      ...(f.idColumn !== undefined ? { idColumn: columnRef(f.idColumn) } : {}),
    };
  } else if (ext === '.json' || ext === '.jsonl') {
    if (csvOnly.length)
      throw new ForecastError(`--column, --time-column and --id-column apply to CSV files; for ${ext} use --field (the key holding the numbers)`);
    raw = { kind: ext.slice(1), path: spec, ...(f.field !== undefined ? { field: f.field } : {}) };
  } else {
    throw new ForecastError(
      `--data "${spec}" is neither a data set name (${DATASET_NAMES.join(', ')}) nor a .csv / .tsv / .json / .jsonl file: pass one of those`,
    );
  }
  const r = SourceSchema.safeParse(raw);
  if (!r.success) throw new ForecastError(`--data ${spec}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Defaults for a folder with no training config (a Hugging Face folder): training's own defaults. */
const BASE = { normalize: 'window', nonFinite: 'interpolate', validFraction: 0.1 } as const;

/**
 * The data config of a forecast: the checkpoint's training data config (its split, stride and
 * normalisation) with --data, --context, --valid-fraction and --stride applied on top.
 */
export function forecastDataConfig(
  train: DataConfig | null,
  f: DataFlags,
  contextLength: number,
  split: { validFraction?: number; stride?: number },
): DataConfig {
  if (!f.data && !train)
    throw new ForecastError(
      '--data is required for a Hugging Face folder (it holds no training data config): pass a data set name or a .csv / .json / .jsonl file',
    );
  if (!f.data && (f.column || f.timeColumn || f.idColumn || f.field)) throw new ForecastError('--column, --time-column, --id-column and --field need --data');
  const source = f.data ? sourceFromFlags({ ...f, data: f.data }) : train!.source;
  const base: z.input<typeof DataConfigSchema> = train ? { ...train } : { ...BASE, source, contextLength };
  // A different context keeps training's stride rule (T/2) unless the config set one explicitly.
  const stride = split.stride ?? (train && train.contextLength === contextLength ? train.stride : undefined);
  return parseDataConfig(
    { ...base, source, contextLength, stride, ...(split.validFraction !== undefined ? { validFraction: split.validFraction } : {}) },
    'data',
  );
}

/** The normalisation a window of `values[from, to)` had in training: x' = (x - mean) / scale. */
export function windowStats(
  mode: DataConfig['normalize'],
  values: Float64Array,
  from: number,
  to: number,
  seriesStats: { mean: number; std: number },
): { mean: number; scale: number } {
  if (mode === 'none') return { mean: 0, scale: 1 };
  const { mean, std } = mode === 'window' ? meanStd(values, from, to) : seriesStats;
  return { mean, scale: normScale(std) };
}

export function normalise(values: Float64Array, from: number, to: number, s: { mean: number; scale: number }): Float32Array {
  const out = new Float32Array(to - from);
  // Same arithmetic as training's windows (multiply by the reciprocal), so the inputs are bit-equal.
  const inv = 1 / s.scale;
  for (let i = from; i < to; i++) out[i - from] = (values[i]! - s.mean) * inv;
  return out;
}

/** Back to original units, in float64: x = x' * scale + mean. */
export function denormalise(x: ArrayLike<number>, s: { mean: number; scale: number }): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * s.scale + s.mean;
  return out;
}
