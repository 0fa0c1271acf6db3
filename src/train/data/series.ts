/** The in-memory form every loader produces: raw values (NaN = missing) kept in float64 until windowing. */
export interface Series {
  /** Where it came from, for messages: file and column, line, dataset and mote, ... */
  id: string;
  values: Float64Array;
  /** Optional per-point 0/1 anomaly labels (same length), carried for evaluation. */
  anomalies?: Uint8Array;
  /** Class of the whole series, for classification tasks (synthetic-classes). */
  classLabel?: number;
  /**
   * The source's time column, one value per point, in the values' (sorted) order: milliseconds
   * since the epoch when the column holds dates, else its numbers (e.g. a year). For labelling
   * outputs (forecast.js charts); training does not read it.
   */
  time?: { column: string; values: Float64Array; dates: boolean };
}

// Strict decimal syntax: Number() would accept '', ' ', '0x1f' and '1_000'-like surprises.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const MISSING = new Set(['', 'nan', 'na', 'n/a', 'null', 'none']);
const POS_INF = new Set(['inf', '+inf', 'infinity', '+infinity']);
const NEG_INF = new Set(['-inf', '-infinity']);

/**
 * Parse one text cell. Missing markers become NaN and infinities stay infinite, so cleaning counts
 * and repairs them; anything else that is not a number returns undefined (the caller reports where).
 */
export function parseNumericCell(cell: string): number | undefined {
  const s = cell.trim();
  if (DECIMAL.test(s)) return Number(s);
  const l = s.toLowerCase();
  if (MISSING.has(l)) return Number.NaN;
  if (POS_INF.has(l)) return Number.POSITIVE_INFINITY;
  if (NEG_INF.has(l)) return Number.NEGATIVE_INFINITY;
  return undefined;
}

/** A cell or name for a message: at most 40 characters, control characters escaped by the caller's JSON.stringify. */
export function shown(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}... (${s.length} characters)` : s;
}
