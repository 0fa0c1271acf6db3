/**
 * The page's data: small-moe.json's packaged data set, parsed at build time by the engine's own
 * loader and shipped beside the page as JSON (scripts/web/build.ts), or a CSV the user drops on the
 * page, parsed by the same CSV code as train.js (src/train/data/csv-rows.ts). Either way the series
 * go through the run's own cleaning, split and windows (src/train/data/prepare.ts).
 */
import { z } from 'zod';
import { parseCsv } from '../train/data/csv-rows.ts';
import { SourceSchema, type DatasetName } from '../train/data/config.ts';
import type { Series } from '../train/data/series.ts';
import { DEFAULT_CONFIG } from './config.ts';

/** One series as the build writes it: non-finite values spelled as the metrics logger does ("NaN", "Infinity", "-Infinity"). */
export interface BundledSeries {
  id: string;
  values: (number | string)[];
}

const source = DEFAULT_CONFIG.data.source;
if (source.kind !== 'dataset') throw new Error(`small-moe.json's data.source is ${source.kind}: the page ships a packaged data set only`);
/** The data set small-moe.json trains on. */
export const BUNDLED_DATASET: DatasetName = source.name;

/** A value of the JSON as written (numbers, non-finite values as strings). */
export function encodeValue(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

const BundledSchema = z.array(z.object({ id: z.string(), values: z.array(z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])])) }));

/** The bundled data set's series, fetched from beside the page. */
export async function fetchBundled(): Promise<Series[]> {
  const res = await fetch(`./${BUNDLED_DATASET}.json`);
  if (!res.ok) throw new Error(`GET ${BUNDLED_DATASET}.json: ${res.status} (run npm run build:web)`);
  const parsed = BundledSchema.parse(await res.json());
  return parsed.map((s) => ({ id: s.id, values: Float64Array.from(s.values, (v) => (typeof v === 'string' ? Number(v) : v)) }));
}

/**
 * A dropped CSV file's series: data.source as train.js would take it for `{ kind: 'csv', path }`,
 * with `column` when given (else the loader's default pick, named in the returned note).
 */
export function csvSeries(text: string, fileName: string, column?: string): { series: Series[]; note: string } {
  const src = SourceSchema.parse({ kind: 'csv', path: fileName, ...(column ? { column } : {}) });
  if (src.kind !== 'csv') throw new Error('unreachable: the schema returned another source kind');
  const { kind: _k, path: _p, ...opts } = src;
  const notes: string[] = [];
  const series = parseCsv(text, fileName, opts, fileName, notes);
  return { series, note: notes.join('; ') };
}
