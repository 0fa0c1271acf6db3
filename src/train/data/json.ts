/**
 * JSON and JSONL → series. Each series is a number array, or an object holding one under `field`.
 * JSONL files are read line by line (a stream), so only the numbers are kept; a JSON file is one
 * document and is read whole (use JSONL for big data).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { JsonlSource, JsonSource } from './config.ts';
import { DataError } from './errors.ts';
import { checkDataFile, checkUnchanged, openDataStream, readTextFile, type DataFile, type LoadOptions } from './files.ts';
import { shown, type Series } from './series.ts';

// null marks a missing point; the quoted tokens come from Python's json.dumps (bare NaN/Infinity), see fixBareTokens.
const Point = z.union([z.number(), z.null(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
const PointArray = z.array(Point);
type Points = z.infer<typeof PointArray>;

function toFloat(points: Points): Float64Array {
  const out = new Float64Array(points.length);
  points.forEach((p, i) => {
    out[i] = p === null || p === 'NaN' ? Number.NaN : p === 'Infinity' ? Number.POSITIVE_INFINITY : p === '-Infinity' ? Number.NEGATIVE_INFINITY : p;
  });
  return out;
}

/**
 * Python writes NaN/Infinity as bare tokens, which is not JSON. Quote them where a value stands
 * (after `[`, `,` or `:`) so the file still loads and cleaning sees the points as non-finite.
 */
function fixBareTokens(text: string): string {
  return text.replace(/([[,:]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '$1"$2"');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const fixed = fixBareTokens(text);
    if (fixed !== text) return JSON.parse(fixed);
    throw e;
  }
}

function objectSchema(field: string) {
  return z.looseObject({ [field]: PointArray });
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur = raw;
  for (const k of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<PropertyKey, unknown>)[k] : undefined;
  return cur;
}

/** "at target[3]: got "five"" for the first problem (paths as in the file). */
function describeIssue(err: z.ZodError, raw: unknown): string {
  const iss = err.issues[0]!;
  const at = iss.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
  const got = valueAt(raw, iss.path);
  if (got === undefined && iss.path.length === 1 && raw !== null && typeof raw === 'object') {
    return `no "${String(iss.path[0])}" key (the object has: ${
      Object.keys(raw)
        .map((k) => `"${k}"`)
        .join(', ') || 'no keys'
    })`;
  }
  return `${at ? `at ${at}: ` : ''}got ${shown(JSON.stringify(got) ?? String(got))}, expected numbers (null marks a missing point)`;
}

function toSeries(raw: unknown, field: string, id: string, where: string): Series {
  if (Array.isArray(raw)) {
    const r = PointArray.safeParse(raw);
    if (!r.success) throw new DataError(`${where}: ${describeIssue(r.error, raw)}: fix the data`);
    return { id, values: toFloat(r.data) };
  }
  if (raw === null || typeof raw !== 'object') {
    throw new DataError(
      `${where}: expected a number array or an object with a number array under "${field}", got ${shown(JSON.stringify(raw) ?? String(raw))}: fix the data`,
    );
  }
  const r = objectSchema(field).safeParse(raw);
  if (!r.success) throw new DataError(`${where}: ${describeIssue(r.error, raw)}: fix the data, or set data.source.field to the key holding the series`);
  // An optional "id" names the series in messages.
  const own = (raw as { id?: unknown }).id;
  return { id: typeof own === 'string' || typeof own === 'number' ? `${id}(${own})` : id, values: toFloat(r.data[field] as Points) };
}

function requireNumbers(series: Series[], file: string): Series[] {
  if (series.length === 0) throw new DataError(`${file}: no series in the file: point data.source.path at a file with data`);
  if (!series.some((s) => s.values.some(Number.isFinite)))
    throw new DataError(`${file}: no numeric data (every series is empty or all missing): check the file and data.source.field`);
  return series;
}

/** One JSONL line (1-based `lineNo`) as a series, or null for a blank line. */
function lineSeries(line: string, lineNo: number, file: string, field: string): Series | null {
  if (line.trim() === '') return null;
  const where = `${file}:${lineNo}`;
  let raw: unknown;
  try {
    raw = parseJson(line);
  } catch (e) {
    const msg = shown(e instanceof Error ? e.message : String(e));
    throw new DataError(`${where}: not valid JSON (${msg}): each line must hold one JSON array of numbers, or an object with the array under "${field}"`);
  }
  return toSeries(raw, field, `${basename(file)}:${lineNo}`, where);
}

function parseJsonl(text: string, file: string, field: string): Series[] {
  const out: Series[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const s = lineSeries(line, i + 1, file, field);
    if (s) out.push(s);
  });
  return requireNumbers(out, file);
}

export function parseJsonArray(text: string, file: string, field: string): Series[] {
  const name = basename(file);
  let raw: unknown;
  try {
    raw = parseJson(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new DataError(`${file}: not valid JSON (${msg}): the file must hold an array of series (use kind "jsonl" for one series per line)`);
  }
  if (!Array.isArray(raw))
    throw new DataError(
      `${file}: the top level must be an array of series (number arrays or objects with "${field}"), got ${raw === null ? 'null' : typeof raw}`,
    );
  // A flat number array is one series.
  if (raw.length > 0 && raw.every((x) => typeof x === 'number' || x === null)) return requireNumbers([toSeries(raw, field, name, file)], file);
  return requireNumbers(
    raw.map((s, i) => toSeries(s, field, `${name}[${i}]`, `${file}: series [${i}]`)),
    file,
  );
}

/** A JSONL file, line by line: memory is the series kept plus one line. */
export async function loadJsonl(src: JsonlSource, cwd: string, opts: LoadOptions = {}): Promise<Series[]> {
  const f = checkDataFile(src.path, cwd);
  const { file } = f;
  const read = { bytes: 0 };
  const { source, decode } = openDataStream(f, opts, read);
  const input = decode ? source.pipe(decode) : source;
  if (decode) source.on('error', (e) => decode.destroy(e));
  const lines = createInterface({ input, crlfDelay: Infinity });
  const out: Series[] = [];
  let n = 0;
  // A bad line is held until the next non-blank one: when it is the last, the file may be cut off.
  let bad: { error: unknown; line: string } | null = null;
  try {
    for await (const raw of lines) {
      opts.signal?.throwIfAborted();
      const line = ++n === 1 ? raw.replace(/^\uFEFF/, '') : raw; // a UTF-8 byte-order mark
      if (bad && line.trim() !== '') throw bad.error;
      try {
        const s = lineSeries(line, n, file, src.field);
        if (s) out.push(s);
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        bad = { error: e, line: `${n}` };
      }
    }
  } catch (e) {
    if (!(e instanceof Error && e.name === 'AbortError')) checkUnchanged(f, null);
    throw e;
  } finally {
    lines.close();
    source.destroy();
    decode?.destroy();
    opts.progress?.done();
  }
  checkUnchanged(f, read.bytes);
  if (bad) {
    // The last line: cut off mid-line when the file does not end with a line break.
    if (!endsWithNewline(f)) {
      const where = `${file}:${bad.line}`;
      const msg = (bad.error as Error).message;
      const why = msg.startsWith(`${where}: `) ? msg.slice(where.length + 2) : msg;
      throw new DataError(
        `${where}: the last line is cut off (the file does not end with a line break; was it still being written or copied?): ${why}. Use the complete file, or remove that line`,
      );
    }
    throw bad.error;
  }
  return requireNumbers(out, file);
}

/** Whether the file's last character is a line feed (in its encoding). */
function endsWithNewline(f: DataFile): boolean {
  const fd = openSync(f.file, 'r');
  try {
    const b = Buffer.alloc(2);
    const n = readSync(fd, b, 0, Math.min(2, f.bytes), Math.max(0, f.bytes - 2));
    if (f.encoding === 'utf-16le') return n === 2 && b[0] === 0x0a && b[1] === 0;
    if (f.encoding === 'utf-16be') return n === 2 && b[0] === 0 && b[1] === 0x0a;
    return b[n - 1] === 0x0a;
  } finally {
    closeSync(fd);
  }
}

export async function loadJson(src: JsonSource, cwd: string): Promise<Series[]> {
  const { file, text } = readTextFile(src.path, cwd);
  return parseJsonArray(text, file, src.field);
}
