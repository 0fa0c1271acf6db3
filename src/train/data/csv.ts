/**
 * CSV files → series, streamed (csv-parse's stream API): each row goes to the builder of
 * csv-rows.ts as it is read, so memory is a small multiple of the data kept, not of the text
 * (bench/data-load.bench.ts measures it).
 */
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse as parseStream } from 'csv-parse';
import type { CsvSource } from './config.ts';
import { CsvSeriesBuilder, PARSE_OPTIONS, csvError } from './csv-rows.ts';
import { checkDataFile, checkUnchanged, openDataStream, type DataFile, type LoadOptions } from './files.ts';
import type { Series } from './series.ts';

/** Stream a CSV file's records into `onRecord` (cells, line the record ends on); `read.bytes` counts the bytes read. */
async function streamCsv(
  f: DataFile,
  delimiter: string,
  onRecord: (cells: string[], line: number) => void,
  opts: LoadOptions,
  read: { bytes: number },
): Promise<void> {
  const { source, decode } = openDataStream(f, opts, read);
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
    await (decode ? pipeline(source, decode, parser, { signal: opts.signal }) : pipeline(source, parser, { signal: opts.signal }));
  } catch (e) {
    if (failure) throw failure;
    if (e instanceof Error && e.name === 'AbortError') throw e;
    throw csvError(f.file, e);
  }
  if (failure) throw failure;
}

export async function loadCsv(src: CsvSource, cwd: string, opts: LoadOptions = {}): Promise<Series[]> {
  const f = checkDataFile(src.path, cwd);
  const { kind: _k, path: _p, ...csv } = src;
  const b = new CsvSeriesBuilder(f.file, csv, basename(f.file));
  const read = { bytes: 0 };
  try {
    await streamCsv(f, csv.delimiter, (cells, line) => b.add(cells, line), opts, read);
  } catch (e) {
    // A file that changed meanwhile explains a bad row better than the row does.
    if (!(e instanceof Error && e.name === 'AbortError')) checkUnchanged(f, null);
    throw e;
  } finally {
    opts.progress?.done();
  }
  checkUnchanged(f, read.bytes);
  const out = b.finish();
  opts.notes?.push(b.columnsNote());
  return out;
}
