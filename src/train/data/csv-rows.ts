/**
 * CSV rows → series: one series per value column (and per id when the file is in long format).
 * The rows-to-series logic is one push-based builder, fed by csv.ts's stream for files (Node) and by
 * csv-parse's sync API for text in memory (the packaged data sets, a CSV dropped on the browser
 * page). Only the numbers are kept (float64 per value, plus the time column while sorting).
 * Platform-free: the browser page parses here too.
 */
import { parse as parseText } from 'csv-parse/sync';
import type { CsvSource } from './config.ts';
import { DataError } from './errors.ts';
import { parseNumericCell, shown, type Series } from './series.ts';

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

/** Rows held as text before the default value column is picked: enough to tell an evenly spaced index. */
const SNIFF_ROWS = 64;

/**
 * Header names of a time or index column: the whole name, or every word of it (so "Date Time",
 * "timestamp_utc" and pandas' unnamed index column count, "runtime" and "time_to_failure" do not).
 */
const TIME_WORDS = new Set([
  'time',
  'date',
  'datetime',
  'timestamp',
  'stamp',
  'ts',
  'ds',
  'utc',
  'gmt',
  'local',
  'unix',
  'epoch',
  'index',
  'idx',
  'year',
  'month',
  'week',
  'day',
  'hour',
  'minute',
  'second',
  'quarter',
  'period',
  'unnamed',
  '0',
]);

export function isTimeName(name: string): boolean {
  const words = name
    .trim()
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  // An empty name is the index column pandas writes (df.to_csv with an unnamed index).
  return words.length === 0 || (words.every((w) => TIME_WORDS.has(w)) && !words.every((w) => w === '0'));
}

/** The step of values that increase by the same amount every row (at least 3 rows), else null. */
function evenStep(values: number[]): number | null {
  if (values.length < 3 || !values.every(Number.isFinite)) return null;
  const d = values[1]! - values[0]!;
  if (!(d > 0)) return null;
  for (let i = 2; i < values.length; i++) if (Math.abs(values[i]! - values[i - 1]! - d) > 1e-6 * d) return null;
  return d;
}

/** What a column holds, as far as the rows read so far tell, for the default pick and the data report. */
type ColumnKind = { kind: 'value' } | { kind: 'time' | 'index'; why: string } | { kind: 'text' } | { kind: 'unknown' };

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
  /** Per column, its first non-missing cell (a date tells a time column). */
  private firstCell: (string | undefined)[] = [];
  /** What each column was taken for when the default value column was picked (the data report's line). */
  private kinds: ColumnKind[] | null = null;
  /** A row with the wrong field count: an error, worded as a cut-off file when it is the last row. */
  private ragged: { fields: number; line: number } | null = null;
  private readonly groups = new Map<string, Group>();
  private finite = 0;
  /** The time column holds dates (else numbers): decided by its first cell. */
  private timeDates: boolean | undefined;
  /** The most data rows ever held as text (tests check the stream keeps this small). */
  maxPending = 0;

  /** `file` names the data in messages; `name`, its last path part, prefixes the series ids. */
  constructor(
    private readonly file: string,
    private readonly opts: CsvOptions,
    private readonly name = file.slice(file.lastIndexOf('/') + 1),
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
      if (ref >= this.width)
        throw new DataError(`${file}: data.source.${key} ${ref} is out of range: the file has ${this.width} column(s), indices 0..${this.width - 1}`);
      return ref;
    }
    if (!this.names)
      throw new DataError(
        `${file}: data.source.${key} "${shown(ref)}" is a column name but data.source.header is false: use a 0-based column index or set header: true`,
      );
    const i = this.names.findIndex((n) => n.trim() === ref);
    if (i < 0) {
      const list = this.names
        .slice(0, 20)
        .map((n) => JSON.stringify(shown(n.trim())))
        .join(', ');
      throw new DataError(
        `${file}: column "${shown(ref)}" (data.source.${key}) not found; the header has: ${list}${this.names.length > 20 ? `, ... (${this.names.length} columns)` : ''}`,
      );
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
      if (this.opts.column !== undefined)
        this.valueCols = (Array.isArray(this.opts.column) ? this.opts.column : [this.opts.column]).map((r) => this.resolve(r, 'column'));
      if (this.opts.header) return;
    }
    if (this.ragged) throw this.raggedError(false);
    if (cells.length !== this.width) {
      // Held until the next row: the last row of a file cut off mid-row gets its own message.
      this.ragged = { fields: cells.length, line };
      return;
    }
    this.dataRows++;
    if (this.valueCols) return this.consume(cells, line);
    this.pending.push({ cells, line });
    this.maxPending = Math.max(this.maxPending, this.pending.length);
    this.pickDefault(cells, false);
  }

  private raggedError(last: boolean): DataError {
    const { fields, line } = this.ragged!;
    const expected = `expected ${this.width}${this.names ? ' like the header' : ' like the first row'}`;
    if (last && fields < this.width)
      return new DataError(
        `${this.at(line)}: the last row has ${fields} field(s), ${expected}: the file ends mid-row (was it cut off while being written or copied?): use the complete file, or remove that line`,
      );
    return new DataError(`${this.at(line)}: row has ${fields} field(s), ${expected}: fix the row (quote cells that contain "${this.opts.delimiter}")`);
  }

  /** What column i holds, from the rows seen so far (the held rows tell an evenly spaced index). */
  private classify(i: number, atEnd: boolean): ColumnKind {
    const n = this.numeric[i];
    if (n === undefined) return { kind: 'unknown' };
    const name = this.names?.[i];
    if (name !== undefined && isTimeName(name)) return { kind: 'time', why: name.trim() ? 'named like one' : 'no name: an index column' };
    if (!n) {
      const c = this.firstCell[i]!.trim();
      return Number.isNaN(Date.parse(c)) ? { kind: 'text' } : { kind: 'time', why: `dates, e.g. ${JSON.stringify(shown(c))}` };
    }
    const step = evenStep(this.pending.map((r) => parseNumericCell(r.cells[i]!) ?? Number.NaN));
    if (step !== null)
      return { kind: 'index', why: `it increases by ${+step.toPrecision(6)} every row${atEnd ? '' : ` in its first ${this.pending.length} rows`}` };
    return { kind: 'value' };
  }

  /**
   * Default value column: the first column, other than time/id/label, that holds numbers and is not
   * a time or index column (named like one, dates, or increasing evenly every row). Decided after
   * SNIFF_ROWS rows (or at the end), as soon as every column before it is known; an evenly spaced
   * column is used only when no other numeric column exists (it is then the data).
   */
  private pickDefault(cells: string[] | null, atEnd: boolean): void {
    const reserved = new Set([this.timeCol, this.idCol, this.labelCol]);
    let learned = false;
    for (let i = 0; i < this.width; i++) {
      if (reserved.has(i) || this.numeric[i] !== undefined || !cells) continue;
      const v = parseNumericCell(cells[i]!);
      if (v === undefined) {
        this.numeric[i] = false;
        this.firstCell[i] = cells[i]!;
      } else if (!Number.isNaN(v)) this.numeric[i] = true;
      learned ||= this.numeric[i] !== undefined;
    }
    // Decide at SNIFF_ROWS rows, later only when a column became known (or at the end).
    if (!atEnd && (this.pending.length < SNIFF_ROWS || (this.pending.length > SNIFF_ROWS && !learned))) return;
    const kinds: ColumnKind[] = [];
    for (let i = 0; i < this.width; i++) {
      if (reserved.has(i)) {
        kinds.push({ kind: 'unknown' });
        continue;
      }
      const k = this.classify(i, atEnd);
      kinds.push(k);
      if (k.kind === 'value') {
        // Columns after it are described as far as they are known.
        for (let j = i + 1; j < this.width; j++) kinds.push(reserved.has(j) ? { kind: 'unknown' } : this.classify(j, atEnd));
        return this.settle([i], kinds);
      }
      if (k.kind === 'unknown' && !atEnd) return; // not known yet: wait for more rows
    }
    // No value column: an evenly spaced one is the data after all; otherwise there is none.
    const ramp = kinds.findIndex((k) => k.kind === 'index');
    if (ramp >= 0) return this.settle([ramp], kinds);
    const skipped = kinds.flatMap((k, i) => (k.kind === 'time' ? [`${this.colName(i)} (${k.why})`] : []));
    throw new DataError(
      `${this.file}: no numeric column found${skipped.length ? ` other than time/index column(s) ${skipped.join(', ')}` : ''}: set data.source.column to the value column (name or 0-based index)`,
    );
  }

  private settle(cols: number[], kinds?: ColumnKind[]): void {
    this.valueCols = cols;
    if (kinds) this.kinds = kinds;
    for (const r of this.pending.splice(0)) this.consume(r.cells, r.line);
  }

  /** "\"value\" (index 1)", or "#1" without a header; `why` goes inside the parentheses. */
  private colLabel(i: number, why?: string): string {
    const inside = [this.names ? `index ${i}` : '', why ?? ''].filter(Boolean).join(', ');
    return inside ? `${this.colName(i)} (${inside})` : this.colName(i);
  }

  /**
   * The data report's line: which column(s) became series, which were skipped as time/index and
   * why, which were not used, and how to choose. Call after finish().
   */
  columnsNote(): string {
    const cols = this.valueCols ?? [];
    const extra = [
      this.timeCol !== undefined ? `rows ordered by ${this.colLabel(this.timeCol)} (data.source.timeColumn)` : '',
      this.idCol !== undefined ? `one series per value of ${this.colLabel(this.idCol)} (data.source.idColumn)` : '',
      this.labelCol !== undefined ? `anomaly labels from ${this.colLabel(this.labelCol)} (data.source.labelColumn)` : '',
    ].filter(Boolean);
    const tail = extra.length ? `; ${extra.join('; ')}` : '';
    if (!this.kinds) return `columns: used ${cols.map((c) => this.colLabel(c)).join(', ')} (data.source.column)${tail}`;
    const kinds = this.kinds;
    const used = cols[0]!;
    const others = (kind: ColumnKind['kind']) => kinds.flatMap((k, i) => (k.kind === kind && i !== used ? [i] : []));
    const why =
      kinds[used]!.kind === 'index'
        ? `the only numeric column, though ${(kinds[used] as { why: string }).why} like an index: if it is one, the file has no value column`
        : 'the first value column';
    const parts = [`columns: used ${this.colLabel(used)}, ${why}`];
    const time = others('time').concat(others('index'));
    if (time.length)
      parts.push(
        `skipped as time/index: ${time
          .sort((a, b) => a - b)
          .map((i) => this.colLabel(i, (kinds[i] as { why: string }).why))
          .join(', ')}`,
      );
    const unused = others('value');
    if (unused.length) parts.push(`not used: ${unused.map((i) => this.colLabel(i)).join(', ')}`);
    const text = others('text');
    if (text.length) parts.push(`text, not used: ${text.map((i) => this.colLabel(i)).join(', ')}`);
    const ref = (i: number) => (this.names ? this.names[i]!.trim() : i);
    const choose = unused.length
      ? `to train on each value column as its own series, set data.source.column to ${JSON.stringify([used, ...unused].map(ref))}; to pick one, set it to its name or 0-based index`
      : 'to pick another column, set data.source.column (a name or 0-based index)';
    return `${parts.join('; ')}${tail}. ${choose[0]!.toUpperCase()}${choose.slice(1)}`;
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
      if (Number.isNaN(t))
        throw new DataError(
          `${this.at(line)}: time column ${this.colName(timeCol)}: ${JSON.stringify(shown(cells[timeCol]!))} is neither a number nor a date: fix the cell or drop data.source.timeColumn`,
        );
      this.timeDates ??= isDateCell(cells[timeCol]!);
      g.times!.push(t);
    }
    if (labelCol !== undefined) {
      const v = parseNumericCell(cells[labelCol]!);
      if (v === undefined)
        throw new DataError(`${this.at(line)}: label column ${this.colName(labelCol)}: ${JSON.stringify(shown(cells[labelCol]!))} is not 0/1: fix the cell`);
      g.labels!.push(v !== 0 && !Number.isNaN(v) ? 1 : 0);
    }
    cols.forEach((c, k) => {
      const v = parseNumericCell(cells[c]!);
      if (v === undefined)
        throw new DataError(
          `${this.at(line)}: column ${this.colName(c)} (index ${c}): ${JSON.stringify(shown(cells[c]!))} is not a number: fix the cell, or leave it empty / NaN to mark it missing`,
        );
      if (Number.isFinite(v)) this.finite++;
      g.values[k]!.push(v);
    });
  }

  finish(): Series[] {
    const { file } = this;
    if (this.ragged) throw this.raggedError(true);
    if (this.width < 0) throw new DataError(`data file is empty: ${file} holds no rows (only blank lines): point data.source.path at a file with data`);
    if (this.dataRows === 0) throw new DataError(`${file}: only a header row, no data rows: add data or set data.source.header to false`);
    if (!this.valueCols) this.pickDefault(null, true);
    const name = this.name;
    const out: Series[] = [];
    for (const [key, g] of this.groups) {
      // Sorting by time is needed only when the rows are out of order. The times are kept (sorted
      // with the values) for labelling outputs: Series.time.
      const inOrder = g.times?.nonDecreasing() ?? true;
      const rawTimes = g.times?.take();
      const order = rawTimes && !inOrder ? timeOrder(rawTimes) : null;
      delete g.times;
      const labels = g.labels ? permute(g.labels.take(), order) : undefined;
      const time =
        rawTimes && this.timeCol !== undefined
          ? { column: this.names ? this.names[this.timeCol]!.trim() : `#${this.timeCol}`, values: permute(rawTimes, order), dates: this.timeDates ?? false }
          : undefined;
      this.valueCols!.forEach((c, k) => {
        const values = permute(g.values[k]!.take(), order);
        const id = `${name}:${this.names ? this.names[c]!.trim() : `#${c}`}${this.idCol === undefined ? '' : `[${key}]`}`;
        out.push({ id, values, ...(labels ? { anomalies: labels } : {}), ...(time ? { time } : {}) });
      });
    }
    if (this.finite === 0)
      throw new DataError(
        `${file}: no numeric data in column(s) ${this.valueCols!.map((c) => this.colName(c)).join(', ')} (every cell is empty or NaN): pick another data.source.column`,
      );
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
export function csvError(file: string, e: unknown): DataError {
  const raw = e instanceof Error ? e.message : String(e);
  const msg = raw.length > 200 ? `${raw.slice(0, 200)}...` : raw;
  return new DataError(`${file}: cannot parse as CSV: ${msg}: fix the file (quotes, delimiter) or set data.source.delimiter`);
}

export const PARSE_OPTIONS = (delimiter: string) => ({ delimiter, bom: true, skip_empty_lines: true, relax_column_count: true });

/**
 * Series from CSV text already in memory (the packaged data sets, a file dropped on the browser
 * page). `notes` gets the line naming the columns used (the data report's, as loadCsv gives it).
 */
export function parseCsv(text: string, file: string, opts: CsvOptions, name?: string, notes?: string[]): Series[] {
  const b = new CsvSeriesBuilder(file, opts, name);
  let rows: { info: { lines: number }; record: string[] }[];
  try {
    // relax_column_count: the builder checks field counts itself to name the line and the expected count.
    rows = parseText(text, { ...PARSE_OPTIONS(opts.delimiter), info: true }) as unknown as typeof rows;
  } catch (e) {
    throw csvError(file, e);
  }
  for (const r of rows) b.add(r.record, r.info.lines);
  const out = b.finish();
  notes?.push(b.columnsNote());
  return out;
}
