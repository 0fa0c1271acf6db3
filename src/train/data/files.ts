/**
 * Data files: the checks every loader shares, and how loaders report progress.
 *
 * Before a file is read (checkDataFile): it exists (a dangling link, a link loop, a path through
 * a file, a permission problem are each named as such), is a file, is not empty, and is text:
 * UTF-8 (with or without a byte-order mark) or UTF-16 with a byte-order mark (Excel's "Unicode
 * text" export), which is decoded (openDataStream); a file with NUL bytes and no such mark is
 * refused as binary, or as UTF-16 without a mark when its NULs say so.
 *
 * While it is read: its size, modification time and inode are taken at the start, and after the
 * read (checkUnchanged) the bytes read must equal that size and the file must be as it was: a
 * file still being written, truncated or replaced meanwhile is refused, not used in part.
 */
import { closeSync, createReadStream, lstatSync, openSync, readFileSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { DataError } from './errors.ts';
import { shown } from './series.ts';

/** Bytes-read progress of a long load (src/train/run/progress.ts draws it). */
export interface LoadProgress {
  advance(bytes: number): void;
  done(): void;
}

export interface LoadOptions {
  progress?: LoadProgress;
  /** Stops a load early (SIGINT / SIGTERM during set-up): the loader rejects with an AbortError. */
  signal?: AbortSignal;
  /** Lines for the data report (e.g. which CSV columns were used and which skipped, and why). */
  notes?: string[];
}

export function resolveDataPath(path: string, cwd: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path);
}

/** How much of a file is sniffed for binary content. */
const SNIFF_BYTES = 64 * 1024;

export type TextEncoding = 'utf-8' | 'utf-16le' | 'utf-16be';

/** A data file as it was when the load started: what checkUnchanged compares against. */
export interface DataFile {
  file: string;
  bytes: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  encoding: TextEncoding;
}

const FIX_PATH = 'check data.source.path in your config';

/** The stat error of a data path, as a message that names what is wrong with the path. */
function statError(file: string, path: string, cwd: string, e: NodeJS.ErrnoException): DataError {
  const code = e.code ?? 'unknown error';
  switch (code) {
    case 'ENOENT': {
      // A link whose target is missing: say so, not "not found" (the link itself is there).
      let link: string | null = null;
      try {
        if (lstatSync(file).isSymbolicLink()) link = readlinkSync(file);
      } catch {
        // not there at all
      }
      if (link !== null)
        return new DataError(
          `data file ${file} is a symbolic link to ${link}, which does not exist (ENOENT): fix the link (ln -sfn <the real file> ${file}) or ${FIX_PATH}`,
        );
      return new DataError(`data file not found: ${file} (resolved from "${path}" against ${cwd}): ${FIX_PATH}`);
    }
    case 'ELOOP':
      return new DataError(
        `data file ${file}: too many levels of symbolic links (ELOOP: the links point at each other in a loop): fix the links (ls -l shows where each points) or point data.source.path at the file itself`,
      );
    case 'ENOTDIR':
      return new DataError(`data file ${file}: a part of the path is a file, not a folder (ENOTDIR): ${FIX_PATH}`);
    case 'ENAMETOOLONG':
      return new DataError(`data file path is too long (ENAMETOOLONG): ${shown(file)}: ${FIX_PATH}`);
    case 'EACCES':
    case 'EPERM':
      return new DataError(
        `data file ${file}: permission denied (${code}) on it or a folder above it: give this user read permission (ls -l ${file}), or ${FIX_PATH}`,
      );
    default:
      return new DataError(`cannot read data file ${file} (${code}): ${e.message}: ${FIX_PATH}`);
  }
}

function statData(file: string, path: string, cwd: string): Stats {
  try {
    return statSync(file);
  } catch (e) {
    throw statError(file, path, cwd, e as NodeJS.ErrnoException);
  }
}

/**
 * The encoding a file's first bytes say: a byte-order mark, or (refused) NULs. UTF-16 without a
 * mark is told from binary by where its NULs are: ASCII text in UTF-16 has a NUL in every other byte.
 */
function sniffEncoding(file: string, head: Buffer): TextEncoding {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'utf-8';
  const utf32 =
    head.length >= 4 &&
    ((head[0] === 0xff && head[1] === 0xfe && head[2] === 0 && head[3] === 0) || (head[0] === 0 && head[1] === 0 && head[2] === 0xfe && head[3] === 0xff));
  if (utf32)
    throw new DataError(
      `${file} is UTF-32 encoded: convert it to UTF-8 (iconv -f UTF-32 -t UTF-8 ${file} > converted.csv) and point data.source.path at the copy`,
    );
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  const nul = head.indexOf(0);
  if (nul < 0) return 'utf-8';
  let even = 0;
  let odd = 0;
  for (let i = 0; i < head.length; i++) if (head[i] === 0) i % 2 ? odd++ : even++;
  const half = head.length / 2;
  if (half >= 4 && (odd >= 0.9 * half || even >= 0.9 * half)) {
    const order = odd > even ? 'LE' : 'BE';
    throw new DataError(
      `${file} looks UTF-16 ${order} encoded without a byte-order mark (a NUL in every other byte): convert it to UTF-8 (iconv -f UTF-16${order} -t UTF-8 ${file} > converted.csv) and point data.source.path at the copy`,
    );
  }
  throw new DataError(`${file} is not a text file (a NUL byte at byte ${nul}: it looks binary): point data.source.path at a CSV or JSON(L) text file`);
}

/**
 * Resolve and check a data file before it is read: it exists, is a file, is not empty, and looks
 * like text in an encoding the loaders read (no NUL byte in its first 64 KiB unless it is UTF-16
 * with a byte-order mark: a binary file given as CSV would otherwise be parsed as one long cell
 * and quoted back in the message).
 */
export function checkDataFile(path: string, cwd: string): DataFile {
  const file = resolveDataPath(path, cwd);
  const st = statData(file, path, cwd);
  if (!st.isFile()) throw new DataError(`data path is not a file: ${file}: ${FIX_PATH}`);
  if (st.size === 0) throw new DataError(`data file is empty: ${file}: point data.source.path at a file with data`);
  const head = Buffer.alloc(Math.min(SNIFF_BYTES, st.size));
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw statError(file, path, cwd, e as NodeJS.ErrnoException);
  }
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const encoding = sniffEncoding(file, head);
  return { file, bytes: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev, encoding };
}

/**
 * After a read: `read` bytes were read (null: the read stopped early, at an error), and the file
 * must still be the one checkDataFile saw, whole. A file that changed is refused with the sizes.
 */
export function checkUnchanged(f: DataFile, read: number | null): void {
  const fix = 'wait until the program writing it has finished, or copy it once complete (cp) and point data.source.path at the copy';
  let now: Stats;
  try {
    now = statSync(f.file);
  } catch {
    throw new DataError(`${f.file} was removed while being read (it was ${f.bytes} bytes): its data would be used in part: ${fix}`);
  }
  const replaced = now.ino !== f.ino || now.dev !== f.dev;
  const changed = replaced || now.size !== f.bytes || now.mtimeMs !== f.mtimeMs || (read !== null && read !== f.bytes);
  if (!changed) return;
  const what = replaced ? 'was replaced by another file while being read' : 'changed while being read';
  const sizes = `was ${f.bytes} bytes, now ${now.size}${read !== null && read !== now.size ? `; ${read} bytes were read` : ''}`;
  throw new DataError(`${f.file} ${what} (${sizes}): its data would be used in part: ${fix}`);
}

/** Decodes UTF-16 (either order) to UTF-8 bytes as they stream; the byte-order mark is dropped. */
function utf16ToUtf8(encoding: 'utf-16le' | 'utf-16be'): Transform {
  const decoder = new TextDecoder(encoding);
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      done(null, Buffer.from(decoder.decode(chunk, { stream: true }), 'utf8'));
    },
    flush(done) {
      done(null, Buffer.from(decoder.decode(), 'utf8'));
    },
  });
}

/**
 * A read stream of the file that counts the bytes read from disk into `read.bytes` and reports
 * them as progress, and the decoder to pipe it through (null for UTF-8: a UTF-8 byte-order mark
 * is left to the reader).
 */
export function openDataStream(f: DataFile, opts: LoadOptions, read: { bytes: number }): { source: Readable; decode: Transform | null } {
  const source = createReadStream(f.file, { highWaterMark: 1 << 20 });
  source.on('data', (chunk) => {
    read.bytes += chunk.length;
    opts.progress?.advance(chunk.length);
  });
  return { source, decode: f.encoding === 'utf-8' ? null : utf16ToUtf8(f.encoding) };
}

/** The whole text of a small data file (JSON arrays, the packaged data sets), after the same checks. */
export function readTextFile(path: string, cwd: string): { file: string; text: string } {
  const f = checkDataFile(path, cwd);
  const raw = readFileSync(f.file);
  checkUnchanged(f, raw.length);
  // TextDecoder drops a byte-order mark (UTF-8 or UTF-16).
  const text = new TextDecoder(f.encoding).decode(raw);
  if (text.trim().length === 0) throw new DataError(`data file is empty: ${f.file}: point data.source.path at a file with data`);
  return { file: f.file, text };
}
