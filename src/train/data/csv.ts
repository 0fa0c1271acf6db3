/** CSV → series: one series per value column (and per id when the file is in long format). */
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { CsvSource } from './config.ts';
import { DataError } from './errors.ts';
import { readTextFile } from './files.ts';
import { parseNumericCell, type Series } from './series.ts';

type ColumnRef = string | number;
export type CsvOptions = Omit<CsvSource, 'kind' | 'path'>;

interface Row {
  line: number;
  cells: string[];
}

function readRows(text: string, file: string, delimiter: string): Row[] {
  let parsed: { info: { lines: number }; record: string[] }[];
  try {
    // relax_column_count: we check field counts ourselves to name the line and the expected count.
    parsed = parse(text, { delimiter, bom: true, skip_empty_lines: true, relax_column_count: true, info: true }) as unknown as typeof parsed;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new DataError(`${file}: cannot parse as CSV: ${msg}: fix the file (quotes, delimiter) or set data.source.delimiter`);
  }
  // A line of only spaces is blank too.
  return parsed.filter((p) => !(p.record.length === 1 && p.record[0]!.trim() === '')).map((p) => ({ line: p.info.lines, cells: p.record }));
}

function resolveColumn(ref: ColumnRef, names: string[] | undefined, width: number, file: string, key: string): number {
  if (typeof ref === 'number') {
    if (ref >= width) throw new DataError(`${file}: data.source.${key} ${ref} is out of range: the file has ${width} column(s), indices 0..${width - 1}`);
    return ref;
  }
  if (!names) throw new DataError(`${file}: data.source.${key} "${ref}" is a column name but data.source.header is false: use a 0-based column index or set header: true`);
  const i = names.findIndex((n) => n.trim() === ref);
  if (i < 0) throw new DataError(`${file}: column "${ref}" (data.source.${key}) not found; the header has: ${names.map((n) => `"${n.trim()}"`).join(', ')}`);
  return i;
}

/** Time values sort numerically when numeric, else as dates (ISO or anything Date.parse reads). */
function parseTime(cell: string): number {
  const n = parseNumericCell(cell);
  if (n !== undefined && Number.isFinite(n)) return n;
  return Date.parse(cell.trim());
}

/** True when the column's first non-missing cell parses as a number. */
function firstValueIsNumeric(data: Row[], col: number): boolean {
  for (const r of data) {
    const v = parseNumericCell(r.cells[col]!);
    if (v === undefined) return false;
    if (!Number.isNaN(v)) return true;
  }
  return false;
}

export function parseCsv(text: string, file: string, opts: CsvOptions): Series[] {
  const name = basename(file);
  const rows = readRows(text, file, opts.delimiter);
  if (rows.length === 0) throw new DataError(`${file}: no rows: point data.source.path at a file with data`);
  const names = opts.header ? rows[0]!.cells : undefined;
  const data = opts.header ? rows.slice(1) : rows;
  const width = rows[0]!.cells.length;
  if (data.length === 0) throw new DataError(`${file}: only a header row, no data rows: add data or set data.source.header to false`);
  for (const r of data) {
    if (r.cells.length !== width) {
      throw new DataError(`${file}:${r.line}: row has ${r.cells.length} field(s), expected ${width}${names ? ' like the header' : ' like the first row'}: fix the row (quote cells that contain "${opts.delimiter}")`);
    }
  }

  const col = (ref: ColumnRef | undefined, key: string) => (ref === undefined ? undefined : resolveColumn(ref, names, width, file, key));
  const timeCol = col(opts.timeColumn, 'timeColumn');
  const idCol = col(opts.idColumn, 'idColumn');
  const labelCol = col(opts.labelColumn, 'labelColumn');
  const colName = (i: number) => (names ? `"${names[i]!.trim()}"` : `#${i}`);

  let valueCols: number[];
  if (opts.column === undefined) {
    // Default: the first column, other than time/id/label, whose first non-missing cell is a number.
    const reserved = new Set([timeCol, idCol, labelCol]);
    const pick = [...Array(width).keys()].find((i) => !reserved.has(i) && firstValueIsNumeric(data, i));
    if (pick === undefined) throw new DataError(`${file}: no numeric column found: set data.source.column to the value column (name or 0-based index)`);
    valueCols = [pick];
  } else {
    const refs = Array.isArray(opts.column) ? opts.column : [opts.column];
    valueCols = refs.map((r) => resolveColumn(r, names, width, file, 'column'));
  }

  // Group rows (long format), keeping first-appearance order of ids.
  const groups = new Map<string, Row[]>();
  for (const r of data) {
    const key = idCol === undefined ? '' : r.cells[idCol]!.trim();
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }

  const out: Series[] = [];
  let finite = 0;
  for (const [key, g] of groups) {
    let ordered = g;
    if (timeCol !== undefined) {
      const t = g.map((r) => {
        const v = parseTime(r.cells[timeCol]!);
        if (Number.isNaN(v)) throw new DataError(`${file}:${r.line}: time column ${colName(timeCol)}: "${r.cells[timeCol]}" is neither a number nor a date: fix the cell or drop data.source.timeColumn`);
        return v;
      });
      const idx = [...g.keys()].sort((a, b) => t[a]! - t[b]! || a - b); // stable
      ordered = idx.map((i) => g[i]!);
    }
    let anomalies: Uint8Array | undefined;
    if (labelCol !== undefined) {
      anomalies = new Uint8Array(ordered.length);
      ordered.forEach((r, i) => {
        const v = parseNumericCell(r.cells[labelCol]!);
        if (v === undefined) throw new DataError(`${file}:${r.line}: label column ${colName(labelCol)}: "${r.cells[labelCol]}" is not 0/1: fix the cell`);
        anomalies![i] = v !== 0 && !Number.isNaN(v) ? 1 : 0;
      });
    }
    for (const c of valueCols) {
      const values = new Float64Array(ordered.length);
      ordered.forEach((r, i) => {
        const cell = r.cells[c]!;
        const v = parseNumericCell(cell);
        if (v === undefined) {
          throw new DataError(`${file}:${r.line}: column ${colName(c)} (index ${c}): "${cell}" is not a number: fix the cell, or leave it empty / NaN to mark it missing`);
        }
        if (Number.isFinite(v)) finite++;
        values[i] = v;
      });
      const id = `${name}:${names ? names[c]!.trim() : `#${c}`}${idCol === undefined ? '' : `[${key}]`}`;
      out.push(anomalies ? { id, values, anomalies } : { id, values });
    }
  }
  if (finite === 0) throw new DataError(`${file}: no numeric data in column(s) ${valueCols.map(colName).join(', ')} (every cell is empty or NaN): pick another data.source.column`);
  return out;
}

export function loadCsv(src: CsvSource, cwd: string): Series[] {
  const { file, text } = readTextFile(src.path, cwd);
  const { kind: _k, path: _p, ...opts } = src;
  return parseCsv(text, file, opts);
}
