/**
 * Writing the run's files so that a failed write (disk full, I/O error, read-only disk) becomes a
 * message naming the file and the space it needed, never a half-written file: plans and reports
 * are written to a temp file and renamed, a metrics line that did not fit is cut off again, and
 * the caller gets an IoError (the CLI exits 1: a run stopped by its environment).
 */
import { appendFileSync, closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, statfsSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { injectFault } from '../run/faults.ts';

const CODE_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is a file, not a folder',
  EISDIR: 'it is a folder',
  EMFILE: 'too many open files',
};

export function isErrno(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string';
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** Free bytes for an unprivileged writer on the file system holding `path` (or its nearest existing parent); null if unknown. */
export function freeBytes(path: string): number | null {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = statfsSync(p);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      if (dirname(p) === p) return null;
    }
  }
}

export interface IoNeed {
  /** Bytes the write needed, when known (ENOSPC messages name it). */
  bytes: number;
  /** What needs them, e.g. "the checkpoint" (default "this write"). */
  what?: string;
}

/** A write the environment refused. `file` is where the file was to be; temp files are already removed. */
export class IoError extends Error {
  constructor(
    readonly file: string,
    readonly code: string,
    /** e.g. "writing", "appending to"; the message reads "<problem> (<code>) <action> <file>". */
    readonly action: string,
    readonly need?: IoNeed,
    readonly freeBytes?: number | null,
  ) {
    super(IoError.text(file, code, action, need, freeBytes));
    this.name = 'IoError';
  }

  static text(file: string, code: string, action: string, need?: IoNeed, free?: number | null): string {
    const what = CODE_TEXT[code] ?? code;
    const space =
      (code === 'ENOSPC' || code === 'EDQUOT') && need
        ? `: ${need.what ?? 'this write'} needs ${formatBytes(need.bytes)}${free !== undefined && free !== null ? ` and the disk has ${formatBytes(free)} free` : ''}`
        : '';
    return `${what} (${code}) ${action} ${file}${space}`;
  }

  static from(e: unknown, file: string, action: string, need?: IoNeed): IoError | null {
    if (e instanceof IoError) return e;
    if (!isErrno(e)) return null;
    const code = e.code!;
    return new IoError(file, code, action, need, code === 'ENOSPC' || code === 'EDQUOT' ? freeBytes(file) : undefined);
  }
}

/** Rethrow an errno error as an IoError about `file`; anything else unchanged. */
export function rethrowIo(e: unknown, file: string, action: string, need?: IoNeed): never {
  throw IoError.from(e, file, action, need) ?? e;
}

/**
 * Replace `path` with `text` atomically: temp file beside it, fsync, rename. On failure the temp
 * file is removed and the old file (if any) is untouched. `site` names a fault-injection point.
 */
export function writeFileAtomic(path: string, text: string, action: string, site: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const bytes = Buffer.byteLength(text);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    injectFault(site);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    rethrowIo(e, path, action, { bytes });
  }
}

/** Append one line; if it did not fit whole, cut the file back to where it was (no torn line). */
export function appendLine(path: string, line: string, action: string, site: string): void {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    // no file yet: the append creates it
  }
  try {
    injectFault(site);
    appendFileSync(path, line);
  } catch (e) {
    try {
      truncateSync(path, size);
    } catch {
      // the file may not exist (the create itself failed)
    }
    rethrowIo(e, path, action, { bytes: Buffer.byteLength(line), what: 'the line' });
  }
}
