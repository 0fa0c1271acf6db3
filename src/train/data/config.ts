/**
 * The `data` section of the training config. `.strict()` everywhere so a misspelt key fails with
 * its path instead of being silently ignored.
 */
import { z } from 'zod';
import { DataError } from './errors.ts';

/** A CSV column: header name, or 0-based index. */
const ColumnRef = z.union([z.string().min(1), z.number().int().min(0)]);

const CsvSourceSchema = z
  .object({
    kind: z.literal('csv'),
    path: z.string().min(1),
    /** Value column(s); each becomes one series (per id when idColumn is set). Default: the first numeric column that is not a time/index column (csv.ts; the data report names it). */
    column: z.union([ColumnRef, z.array(ColumnRef).min(1)]).optional(),
    /** Rows are sorted by this column (ISO dates or numbers) before use. */
    timeColumn: ColumnRef.optional(),
    /** Rows with the same value in this column form one series (long format, e.g. mote id, ticker). */
    idColumn: ColumnRef.optional(),
    /** Optional 0/1 anomaly labels per row, carried with the series for evaluation. */
    labelColumn: ColumnRef.optional(),
    /** Whether the first non-blank line is a header row. */
    header: z.boolean().default(true),
    delimiter: z.string().length(1).default(','),
  })
  .strict();

/** A file of series (src/train/data/json.ts): one per line (jsonl), or one JSON document read whole (json). */
function arrayFileSource<K extends 'jsonl' | 'json'>(kind: K) {
  return z
    .object({
      kind: z.literal(kind),
      path: z.string().min(1),
      /** Key holding the number array when a series is an object (Time-MoE files use "sequence"). */
      field: z.string().min(1).default('target'),
    })
    .strict();
}

const JsonlSourceSchema = arrayFileSource('jsonl');
const JsonSourceSchema = arrayFileSource('json');

export const DATASET_NAMES = [
  'sensor-humidity',
  'sensor-temperature',
  'co2',
  'sp500',
  'sp500-monthly',
  'stocks',
  'seattle-temp',
  'seattle-hourly',
  'weather-temp',
  'global-temp',
] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

const DatasetSourceSchema = z
  .object({
    kind: z.literal('dataset'),
    name: z.enum(DATASET_NAMES),
  })
  .strict();

const SyntheticSourceSchema = z
  .object({
    kind: z.literal('synthetic'),
    series: z.number().int().positive(),
    length: z.number().int().positive(),
    seed: z.number().int().min(0).default(0),
    /** Slope per time step (each series draws a factor in [0.5, 1.5] and a random sign). */
    trend: z.number().default(0),
    seasonality: z.array(z.object({ period: z.number().positive(), amplitude: z.number().min(0) }).strict()).default([{ period: 24, amplitude: 1 }]),
    /** Standard deviation of the Gaussian noise. */
    noise: z.number().min(0).default(0.1),
    /** Spikes: each point is one with probability `rate`, shifted by ±magnitude. */
    anomalies: z
      .object({ rate: z.number().min(0).max(1), magnitude: z.number().min(0) })
      .strict()
      .default({ rate: 0, magnitude: 0 }),
  })
  .strict();

/**
 * Labelled series for the classification head: class c is a sine of frequency (1 + (c mod 20)/2)
 * cycles per window and phase 2π·floor(c/20)/14 (so up to 280 distinct classes), plus noise.
 * Each series holds two independent instances of its class, so the time split gives one training
 * and one validation window per series.
 */
const SyntheticClassesSourceSchema = z
  .object({
    kind: z.literal('synthetic-classes'),
    classes: z.number().int().min(2).max(280),
    seriesPerClass: z.number().int().positive().default(4),
    noise: z.number().min(0).default(0.3),
    seed: z.number().int().min(0).default(0),
  })
  .strict();

export const SourceSchema = z.discriminatedUnion('kind', [
  CsvSourceSchema,
  JsonlSourceSchema,
  JsonSourceSchema,
  DatasetSourceSchema,
  SyntheticSourceSchema,
  SyntheticClassesSourceSchema,
]);

export const DataConfigSchema = z
  .object({
    source: SourceSchema,
    /** The model's context T: each window holds T inputs and T next-step labels (T+1 points). */
    contextLength: z.number().int().positive(),
    /** Step between window starts; default max(1, floor(contextLength / 2)). */
    stride: z.number().int().positive().optional(),
    /** 'window': mean/std of each window's inputs (RevIN-like); 'series': of each series' train part; 'none'. */
    normalize: z.enum(['window', 'series', 'none']).default('window'),
    /** What to do with NaN/Inf points: drop the whole series, interpolate linearly, or fail. */
    nonFinite: z.enum(['drop-series', 'interpolate', 'error']).default('interpolate'),
    /** Series shorter than this (and than contextLength + 1) are dropped. */
    minLength: z.number().int().positive().optional(),
    /** Last fraction of each series held out for validation (time-ordered, no overlap). */
    validFraction: z.number().min(0).lt(1).default(0.1),
    /** Keep only the first N series that survive cleaning. */
    maxSeries: z.number().int().positive().optional(),
  })
  .strict();

export type DataConfig = z.output<typeof DataConfigSchema>;
export type SourceConfig = DataConfig['source'];
export type CsvSource = z.output<typeof CsvSourceSchema>;
export type JsonlSource = z.output<typeof JsonlSourceSchema>;
export type JsonSource = z.output<typeof JsonSourceSchema>;
export type SyntheticSource = z.output<typeof SyntheticSourceSchema>;
export type SyntheticClassesSource = z.output<typeof SyntheticClassesSourceSchema>;

export function effectiveStride(cfg: Pick<DataConfig, 'stride' | 'contextLength'>): number {
  return cfg.stride ?? Math.max(1, Math.floor(cfg.contextLength / 2));
}

/** Shortest series kept: one window (T inputs + the next-step label) at least. */
export function effectiveMinLength(cfg: Pick<DataConfig, 'minLength' | 'contextLength'>): number {
  return Math.max(cfg.minLength ?? 0, cfg.contextLength + 1);
}

/**
 * Forecast heads predict h future points from each position; a window only holds T of them, so a
 * horizon longer than the context could never be supervised.
 */
export function checkHorizons(contextLength: number, horizons: readonly number[]): void {
  if (horizons.length === 0) throw new DataError('no forecast horizons given: set model.horizons to a non-empty list, e.g. [1, 8]');
  for (const h of horizons) {
    if (!Number.isInteger(h) || h < 1) throw new DataError(`horizon ${h} is not a positive integer: fix model.horizons`);
    if (h > contextLength) {
      throw new DataError(
        `horizon ${h} is longer than data.contextLength ${contextLength}: raise data.contextLength to at least ${h} or remove ${h} from model.horizons`,
      );
    }
  }
}

/** Validate a raw `data` object (e.g. in tests or tools); the CLI validates it as part of the whole config. */
export function parseDataConfig(raw: unknown, where = 'data'): DataConfig {
  const r = DataConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((iss) => {
    const path = [where, ...iss.path.map(String)].join('.');
    if (iss.code === 'unrecognized_keys') return `${iss.keys.map((k) => `${path}.${k}`).join(', ')}: unknown key (remove it or fix its spelling)`;
    return `${path}: ${iss.message}`;
  });
  throw new DataError(`invalid data config:\n  ${lines.join('\n  ')}`);
}
