/**
 * CSV → series: one series per value column (and per id when the file is in long format).
 *
 * Files are streamed (csv-parse's stream API): each row is turned into numbers as it is read and
 * only the numbers are kept (float64 per value, plus the time column while sorting), so memory is
 * a small multiple of the data kept, not of the text (bench/data-load.bench.ts measures it). The
 * rows-to-series logic is one push-based builder, fed by the stream for files and by csv-parse's
 * sync API for in-memory text (the packaged data sets).
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse as parseStream } from 'csv-parse';
import { parse as parseText } from 'csv-parse/sync';
import type { CsvSource } from './config.ts';
import { DataError } from './errors.ts';
import { checkDataFile, shown, type LoadOptions } from './files.ts';
import { parseNumericCell, type Series } from './series.ts';

type ColumnRef = string | number;
export type CsvOptions = Omit<CsvSource, 'kind' | 'path'>;

/** Growable typed column in chunks that double up to 64 Ki values: no copy while growing, little slack for short series. */
class Column<T extends Float64Array | Uint8Array> {
  private chunks: T[] = [];
  private cur: T;
  private fill = 0;
  length = 0;

  constructor(private readonly make: (n: number) => T) {
    this.cur = make(256);
  }

  push(v: number): void {
    if (this.fill === this.cur.length) {
      this.chunks.push(this.cur);
      this.cur = this.make(Math.min(this.cur.length * 2, 1 << 16));
      this.fill = 0;
    }
    this.cur[this.fill++] = v;
    this.length++;
  }

  /** Whether the values never decrease (a time column already in order needs no sort, nor a copy). */
  nonDecreasing(): boolean {
    let prev = -Infinity;
    for (const c of [...this.chunks, this.cur.subarray(0, this.fill)]) {
      for (let i = 0; i < c.length; i++) {
        if (c[i]! < prev) return false;
        prev = c[i]!;
      }
    }
    return true;
  }

  /** One contiguous array; the chunks are released as they are copied. */
  take(): T {
    const out = this.make(this.length);
    let at = 0;
    for (const c of [...this.chunks.splice(0), this.cur.subarray(0, this.fill) as T]) {
      out.set(c, at);
      at += c.length;
    }
    this.cur = this.make(0);
    this.fill = 0;
    return out;
  }
}

interface Group {
  values: Column<Float64Array>[];
  times?: Column<Float64Array>;
  labels?: Column<Uint8Array>;
}

/** Time values sort numerically when numeric, else as dates (ISO or anything Date.parse reads). */
function parseTime(cell: string): number {
  const n = parseNumericCell(cell);
  if (n !== undefined && Number.isFinite(n)) return n;
  return Date.parse(cell.trim());
}

/** Whether a time cell is a date (not a plain number). */
function isDateCell(cell: string): boolean {
  const n = parseNumericCell(cell);
  return !(n !== undefined && Number.isFinite(n));
}

/** Rows in, series out. Errors name the file, the line and the fix. */
export class CsvSeriesBuilder {
  private names: string[] | undefined;
  private width = -1;
  private dataRows = 0;
  private timeCol: number | undefined;
  private idCol: number | undefined;
  private labelCol: number | undefined;
  private valueCols: number[] | null = null;
  /** Data rows held as text until the default value column is known (usually one). */
  private pending: { cells: string[]; line: number }[] = [];
  /** Per column, for the default pick: undefined = only missing cells so far. */
  private numeric: (boolean | undefined)[] = [];
  private readonly groups = new Map<string, Group>();
  private finite = 0;
  /** The time column holds dates (else numbers): decided by its first cell. */
  private timeDates: boolean | undefined;
  /** The most data rows ever held as text (tests check the stream keeps this small). */
  maxPending = 0;

  constructor(
    private readonly file: string,
    private readonly opts: CsvOptions,
  ) {}

  /** "file:line"; a negative line is a record number (when the stream could not tell the line). */
  private at(line: number): string {
    return line > 0 ? `${this.file}:${line}` : `${this.file} (record ${-line})`;
  }

  private colName(i: number): string {
    return this.names ? JSON.stringify(shown(this.names[i]!.trim())) : `#${i}`;
  }

  private resolve(ref: ColumnRef, key: string): number {
    const { file } = this;
    if (typeof ref === 'number') {
      if (ref >= this.width) throw new DataError(`${file}: data.source.${key} ${ref} is out of range: the file has ${this.width} column(s), indices 0..${this.width - 1}`);
      return ref;
    }
    if (!this.names) throw new DataError(`${file}: data.source.${key} "${shown(ref)}" is a column name but data.source.header is false: use a 0-based column index or set header: true`);
    const i = this.names.findIndex((n) => n.trim() === ref);
    if (i < 0) {
      const list = this.names.slice(0, 20).map((n) => JSON.stringify(shown(n.trim()))).join(', ');
      throw new DataError(`${file}: column "${shown(ref)}" (data.source.${key}) not found; the header has: ${list}${this.names.length > 20 ? `, ... (${this.names.length} columns)` : ''}`);
    }
    return i;
  }

  /** One parsed record with the line it ends on. */
  add(cells: string[], line: number): void {
    // A line of only spaces is blank too.
    if (cells.length === 1 && cells[0]!.trim() === '') return;
    if (this.width < 0) {
      this.width = cells.length;
      const ref = (r: ColumnRef | undefined, key: string) => (r === undefined ? undefined : this.resolve(r, key));
      if (this.opts.header) this.names = cells;
      this.timeCol = ref(this.opts.timeColumn, 'timeColumn');
      this.idCol = ref(this.opts.idColumn, 'idColumn');
      this.labelCol = ref(this.opts.labelColumn, 'labelColumn');
      if (this.opts.column !== undefined) this.valueCols = (Array.isArray(this.opts.column) ? this.opts.column : [this.opts.column]).map((r) => this.resolve(r, 'column'));
      if (this.opts.header) return;
    }
    if (cells.length !== this.width) {
      throw new DataError(`${this.at(line)}: row has ${cells.length} field(s), expected ${this.width}${this.names ? ' like the header' : ' like the first row'}: fix the row (quote cells that contain "${this.opts.delimiter}")`);
    }
    this.dataRows++;
    if (this.valueCols) return this.consume(cells, line);
    this.pending.push({ cells, line });
    this.maxPending = Math.max(this.maxPending, this.pending.length);
    this.pickDefault(cells, false);
  }

  /**
   * Default value column: the first column, other than time/id/label, whose first non-missing
   * cell is a number. Decided as soon as every column before it is known not to be numeric.
   */
  private pickDefault(cells: string[] | null, atEnd: boolean): void {
    const reserved = new Set([this.timeCol, this.idCol, this.labelCol]);
    for (let i = 0; i < this.width; i++) {
      if (reserved.has(i) || this.numeric[i] !== undefined || !cells) continue;
      const v = parseNumericCell(cells[i]!);
      if (v === undefined) this.numeric[i] = false;
      else if (!Number.isNaN(v)) this.numeric[i] = true;
    }
    for (let i = 0; i < this.width; i++) {
      if (reserved.has(i)) continue;
      const n = this.numeric[i];
      if (n === true) return this.settle([i]);
      if (n === undefined && !atEnd) return; // not known yet: wait for more rows
    }
    // Every candidate is text (or, at the end, only ever missing).
    throw new DataError(`${this.file}: no numeric column found: set data.source.column to the value column (name or 0-based index)`);
  }

  private settle(cols: number[]): void {
    this.valueCols = cols;
    for (const r of this.pending.splice(0)) this.consume(r.cells, r.line);
  }

  private consume(cells: string[], line: number): void {
    const { timeCol, idCol, labelCol } = this;
    const cols = this.valueCols!;
    const key = idCol === undefined ? '' : cells[idCol]!.trim();
    let g = this.groups.get(key);
    if (!g) {
      g = { values: cols.map(() => new Column((n) => new Float64Array(n))) };
      if (timeCol !== undefined) g.times = new Column((n) => new Float64Array(n));
      if (labelCol !== undefined) g.labels = new Column((n) => new Uint8Array(n));
      this.groups.set(key, g);
    }
    if (timeCol !== undefined) {
      const t = parseTime(cells[timeCol]!);
      if (Number.isNaN(t)) throw new DataError(`${this.at(line)}: time column ${this.colName(timeCol)}: ${JSON.stringify(shown(cells[timeCol]!))} is neither a number nor a date: fix the cell or drop data.source.timeColumn`);
      this.timeDates ??= isDateCell(cells[timeCol]!);
      g.times!.push(t);
    }
    if (labelCol !== undefined) {
      const v = parseNumericCell(cells[labelCol]!);
      if (v === undefined) throw new DataError(`${this.at(line)}: label column ${this.colName(labelCol)}: ${JSON.stringify(shown(cells[labelCol]!))} is not 0/1: fix the cell`);
      g.labels!.push(v !== 0 && !Number.isNaN(v) ? 1 : 0);
    }
    cols.forEach((c, k) => {
      const v = parseNumericCell(cells[c]!);
      if (v === undefined) throw new DataError(`${this.at(line)}: column ${this.colName(c)} (index ${c}): ${JSON.stringify(shown(cells[c]!))} is not a number: fix the cell, or leave it empty / NaN to mark it missing`);
      if (Number.isFinite(v)) this.finite++;
      g.values[k]!.push(v);
    });
  }

  finish(): Series[] {
    const { file } = this;
    if (this.width < 0) throw new DataError(`data file is empty: ${file} holds no rows (only blank lines): point data.source.path at a file with data`);
    if (this.dataRows === 0) throw new DataError(`${file}: only a header row, no data rows: add data or set data.source.header to false`);
    if (!this.valueCols) this.pickDefault(null, true);
    const name = basename(file);
    const out: Series[] = [];
    for (const [key, g] of this.groups) {
      // Sorting by time is needed only when the rows are out of order. The times are kept (sorted
      // with the values) for labelling outputs: Series.time.
      const inOrder = g.times?.nonDecreasing() ?? true;
      const rawTimes = g.times?.take();
      const order = rawTimes && !inOrder ? timeOrder(rawTimes) : null;
      delete g.times;
      const labels = g.labels ? permute(g.labels.take(), order) : undefined;
      const time = rawTimes && this.timeCol !== undefined ? { column: this.names ? this.names[this.timeCol]!.trim() : `#${this.timeCol}`, values: permute(rawTimes, order), dates: this.timeDates ?? false } : undefined;
      this.valueCols!.forEach((c, k) => {
        const values = permute(g.values[k]!.take(), order);
        const id = `${name}:${this.names ? this.names[c]!.trim() : `#${c}`}${this.idCol === undefined ? '' : `[${key}]`}`;
        out.push({ id, values, ...(labels ? { anomalies: labels } : {}), ...(time ? { time } : {}) });
      });
    }
    if (this.finite === 0) throw new DataError(`${file}: no numeric data in column(s) ${this.valueCols!.map((c) => this.colName(c)).join(', ')} (every cell is empty or NaN): pick another data.source.column`);
    return out;
  }
}

/** The stable order that sorts `t`. */
function timeOrder(t: Float64Array): Uint32Array {
  const idx = new Uint32Array(t.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx.sort((a, b) => t[a]! - t[b]! || a - b);
}

function permute<T extends Float64Array | Uint8Array>(x: T, order: Uint32Array | null): T {
  if (!order) return x;
  const out = x.slice() as T;
  for (let i = 0; i < order.length; i++) out[i] = x[order[i]!]!;
  return out;
}

/** csv-parse's own error, shortened (it can quote a whole field of a binary file) and with the fix. */
function csvError(file: string, e: unknown): DataError {
  const raw = e instanceof Error ? e.message : String(e);
  const msg = raw.length > 200 ? `${raw.slice(0, 200)}...` : raw;
  return new DataError(`${file}: cannot parse as CSV: ${msg}: fix the file (quotes, delimiter) or set data.source.delimiter`);
}

const PARSE_OPTIONS = (delimiter: string) => ({ delimiter, bom: true, skip_empty_lines: true, relax_column_count: true });

/** Series from CSV text already in memory (the packaged data sets). */
export function parseCsv(text: string, file: string, opts: CsvOptions): Series[] {
  const b = new CsvSeriesBuilder(file, opts);
  let rows: { info: { lines: number }; record: string[] }[];
  try {
    // relax_column_count: the builder checks field counts itself to name the line and the expected count.
    rows = parseText(text, { ...PARSE_OPTIONS(opts.delimiter), info: true }) as unknown as typeof rows;
  } catch (e) {
    throw csvError(file, e);
  }
  for (const r of rows) b.add(r.record, r.info.lines);
  return b.finish();
}

/** Stream a CSV file's records into `onRecord` (cells, line the record ends on). */
async function streamCsv(file: string, delimiter: string, onRecord: (cells: string[], line: number) => void, opts: LoadOptions): Promise<void> {
  const input = createReadStream(file, { highWaterMark: 1 << 20 });
  input.on('data', (chunk) => opts.progress?.advance(chunk.length));
  const parser = parseStream(PARSE_OPTIONS(delimiter));
  let failure: unknown = null;
  let records = 0;
  // 'data' is emitted as each record is parsed, so parser.info.lines is that record's last line;
  // the record count check guards that (a record read later would give a wrong line number).
  parser.on('data', (cells: string[]) => {
    if (failure) return;
    records++;
    try {
      onRecord(cells, parser.info.records === records ? parser.info.lines : -records);
    } catch (e) {
      failure = e;
      parser.destroy();
    }
  });
  try {
    await pipeline(input, parser, { signal: opts.signal });
  } catch (e) {
    if (failure) throw failure;
    if (e instanceof Error && e.name === 'AbortError') throw e;
    throw csvError(file, e);
  }
  if (failure) throw failure;
}

export async function loadCsv(src: CsvSource, cwd: string, opts: LoadOptions = {}): Promise<Series[]> {
  const { file } = checkDataFile(src.path, cwd);
  const { kind: _k, path: _p, ...csv } = src;
  const b = new CsvSeriesBuilder(file, csv);
  try {
    await streamCsv(file, csv.delimiter, (cells, line) => b.add(cells, line), opts);
  } finally {
    opts.progress?.done();
  }
  return b.finish();
}
