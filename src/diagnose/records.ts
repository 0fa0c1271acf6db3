/**
 * Records for the detectors, from what the logger writes or holds in memory. Lenient on purpose:
 * non-finite numbers may be spelled "NaN" / "Infinity" / "-Infinity" (metrics.jsonl) or be real
 * NaN (the run's in-memory record); routing statistics of a skipped or non-finite step may be null
 * or NaN (they are not valid, and the detectors ignore them); extra keys are ignored. What the
 * detectors cannot do without (kind, step, the losses) must be there.
 */
import type { BadTensor, DiagRecord, LayerRouting, TrainRecord, ValidRecord } from './types.ts';
import { jsonLines } from '../util/json.ts';

type Obj = Record<string, unknown>;

/** A number, its non-finite spelling, or null/absent (→ NaN). */
function n(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return NaN;
}

const isNumLike = (v: unknown) => typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity';
const optNum = (v: unknown): number | undefined => (v === undefined ? undefined : n(v));

function badTensor(v: unknown): BadTensor | null {
  if (!v || typeof v !== 'object') return null;
  const b = v as Obj;
  return {
    name: typeof b.name === 'string' ? b.name : '(unnamed)',
    layer: typeof b.layer === 'number' ? b.layer : -1,
    nonFinite: n(b.nonFinite),
    min: n(b.min),
    max: n(b.max),
    mean: n(b.mean),
  };
}

function layerRouting(v: unknown, i: number): LayerRouting | null {
  if (!v || typeof v !== 'object') return null;
  const r = v as Obj;
  const load = Array.isArray(r.load) ? r.load.map(n) : null;
  return {
    layer: typeof r.layer === 'number' ? r.layer : i,
    load: load && load.length && load.every(Number.isFinite) ? load : null,
    entropy: n(r.entropy),
    maxShare: n(r.maxShare),
    ...(r.switchLoss !== undefined ? { switchLoss: n(r.switchLoss) } : {}),
    ...(r.dropped !== undefined ? { dropped: n(r.dropped) } : {}),
  };
}

/** The record, null for a kind the diagnosis does not read, or what is wrong with it. */
export function toRecord(raw: unknown): DiagRecord | null | { error: string } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { error: 'expected a JSON object' };
  const r = raw as Obj;
  if (r.kind !== 'train' && r.kind !== 'valid') return typeof r.kind === 'string' ? null : { error: 'missing string "kind"' };
  if (typeof r.step !== 'number' || !Number.isInteger(r.step)) return { error: `${r.kind} record: "step" must be an integer` };
  for (const k of ['loss', 'lossMain'] as const)
    if (!isNumLike(r[k])) return { error: `${r.kind} record at step ${r.step}: "${k}" must be a number (or "NaN"/"Infinity")` };
  if (r.kind === 'valid') {
    const v: ValidRecord = { kind: 'valid', step: r.step, loss: n(r.loss), lossMain: n(r.lossMain) };
    if (r.accuracy !== undefined) v.accuracy = n(r.accuracy);
    if (typeof r.windows === 'number') v.windows = r.windows;
    return v;
  }
  const clipCoef = r.clipCoef === undefined ? NaN : n(r.clipCoef);
  const t: TrainRecord = {
    kind: 'train',
    step: r.step,
    loss: n(r.loss),
    lossMain: n(r.lossMain),
    aux: n(r.aux),
    z: n(r.z),
    lr: n(r.lr),
    auxFactor: n(r.auxFactor),
    gradNorm: n(r.gradNorm),
    gradNormPostClip: n(r.gradNormPostClip),
    clipCoef,
    clippedFraction: r.clippedFraction !== undefined ? n(r.clippedFraction) : Number.isFinite(clipCoef) ? 1 - clipCoef : NaN,
    skipped: r.skipped === true,
    nonFinite: Array.isArray(r.nonFinite) ? r.nonFinite.map(badTensor).filter((b): b is BadTensor => b !== null) : [],
    routing: Array.isArray(r.routing) ? r.routing.map(layerRouting).filter((l): l is LayerRouting => l !== null) : [],
  };
  const ls = optNum(r.lossScale);
  if (ls !== undefined) t.lossScale = ls;
  if (typeof r.overflow === 'boolean') t.overflow = r.overflow;
  return t;
}

export class MetricsTextError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${source}:${line}: ${detail}`);
    this.name = 'MetricsTextError';
  }
}

export interface ParsedMetrics {
  records: DiagRecord[];
  /** A last line without its newline that does not parse: a run writing it right now (left out). */
  partialLastLine: boolean;
}

/**
 * metrics.jsonl text → records in file order. A cut last line (no newline after it, not valid
 * JSON) is a line being written: it is left out, and `partialLastLine` says so. Any other bad line
 * throws MetricsTextError naming source:line.
 */
export function parseMetricsText(text: string, source = '<metrics>'): ParsedMetrics {
  const records: DiagRecord[] = [];
  let partialLastLine = false;
  for (const l of jsonLines(text)) {
    if ('error' in l) {
      if (l.cut) {
        partialLastLine = true;
        continue;
      }
      throw new MetricsTextError(source, l.line, `not valid JSON (${l.error})`);
    }
    const r = toRecord(l.raw);
    if (r === null) continue;
    if ('error' in r) throw new MetricsTextError(source, l.line, r.error);
    records.push(r);
  }
  return { records, partialLastLine };
}
