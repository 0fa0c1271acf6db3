/** Data files: the checks every loader shares (missing, not a file, empty, binary), and how loaders report progress. */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { DataError } from './errors.ts';

/** Bytes-read progress of a long load (src/train/run/progress.ts draws it). */
export interface LoadProgress {
  advance(bytes: number): void;
  done(): void;
}

export interface LoadOptions {
  progress?: LoadProgress;
  /** Stops a load early (SIGINT / SIGTERM during set-up): the loader rejects with an AbortError. */
  signal?: AbortSignal;
}

export function resolveDataPath(path: string, cwd: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path);
}

/** A cell or name for a message: at most 40 characters, control characters escaped by the caller's JSON.stringify. */
export function shown(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}... (${s.length} characters)` : s;
}

/** How much of a file is sniffed for binary content. */
const SNIFF_BYTES = 64 * 1024;

/**
 * Resolve and check a data file before it is read: it exists, is a file, is not empty, and looks
 * like text (no NUL byte in its first 64 KiB: a binary file given as CSV would otherwise be
 * parsed as one long cell and quoted back in the message).
 */
export function checkDataFile(path: string, cwd: string): { file: string; bytes: number } {
  const file = resolveDataPath(path, cwd);
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new DataError(`data file not found: ${file} (resolved from "${path}" against ${cwd}): check data.source.path in your config`);
  }
  if (!st.isFile()) throw new DataError(`data path is not a file: ${file}: check data.source.path in your config`);
  if (st.size === 0) throw new DataError(`data file is empty: ${file}: point data.source.path at a file with data`);
  const head = Buffer.alloc(Math.min(SNIFF_BYTES, st.size));
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new DataError(`cannot read data file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}): check its permissions, or data.source.path`);
  }
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const nul = head.indexOf(0);
  if (nul >= 0) throw new DataError(`${file} is not a text file (a NUL byte at byte ${nul}: it looks binary): point data.source.path at a CSV or JSON(L) text file`);
  return { file, bytes: st.size };
}

/** The whole text of a small data file (JSON arrays, the packaged data sets), after the same checks. */
export function readTextFile(path: string, cwd: string): { file: string; text: string } {
  const { file } = checkDataFile(path, cwd);
  const text = readFileSync(file, 'utf8');
  if (text.trim().length === 0) throw new DataError(`data file is empty: ${file}: point data.source.path at a file with data`);
  return { file, text };
}
