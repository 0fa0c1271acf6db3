/**
 * Writes that are whole or absent: the one place the project replaces a file or a folder on disk.
 *
 *   writeFileAtomic      a file from data in memory: temp file beside it, fsync, rename (and, when
 *                        asked, fsync of the folder so the rename survives power loss);
 *   writeFileDurable     the same for a file written piece by piece (safetensors), or in place
 *                        inside a folder that is itself a temp folder;
 *   replaceFolderAtomic  a whole folder: filled in a temp folder beside it, swapped into place;
 *   appendLine           one line appended whole, or cut back off;
 *   IoError              what the environment refused (disk full, I/O error, read-only disk), as
 *                        `cannot <action> <file>: <reason> (<code>)` plus a fix: the one shape of
 *                        I/O errors in every command (src/util/cli-errors.ts prints it).
 *
 * Temp files and folders are `<target>.tmp-<pid>-<hex>` beside the target, a replaced folder is
 * moved to `<target>.old-<pid>-<hex>` until the new one is in place (TEMP_RE, OLD_RE). So a name
 * always holds the previous complete contents or the new complete ones: a failure removes the temp
 * and leaves the old contents untouched; a kill leaves at most a `.tmp-` / `.old-` entry beside it,
 * which src/train/persist/checkpoint.ts cleans up for checkpoints.
 *
 * src/util is the lowest layer: every writer above (checkpoints, the run's plan, header, profile
 * and metrics, reports, forecast outputs, exports) goes through here.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Names

/** A temp file or folder left by a writer (its pid in group 1). */
export const TEMP_RE = /\.tmp-(\d+)-[0-9a-f]+$/;
/** A folder moved aside while its replacement went in (its name in group 1, the pid in group 2). */
export const OLD_RE = /^(.+)\.old-(\d+)-[0-9a-f]+$/;

/** `<pid>-<8 hex>`: unique per call, and names the writer so a dead one's leftovers can be told apart. */
export function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

const tempPath = (path: string) => `${path}.tmp-${uniqueSuffix()}`;

// ---------------------------------------------------------------------------------------------
// Errors

/** What each errno means, in plain words, and what the user can do about it. */
const CODES: Record<string, { reason: string; fix: string; path?: true }> = {
  ENOSPC: { reason: 'no space left on device', fix: 'Free space on that disk (or write to another one), then run again' },
  EDQUOT: { reason: 'disk quota exceeded', fix: 'Free space within your quota (or write to another disk), then run again' },
  EIO: { reason: 'input/output error', fix: 'The disk or its connection failed: check it (dmesg, fsck), then run again' },
  EMFILE: { reason: 'too many open files', fix: 'Raise the open-file limit (ulimit -n), then run again' },
  ENFILE: { reason: 'too many open files on this system', fix: 'Close other programs or raise the system limit, then run again' },
  ENOENT: { reason: 'no such file or folder', fix: 'A folder on the path is missing (removed while writing?): check it, then run again' },
  EBUSY: { reason: 'the path is busy (in use, or a mount point)', fix: 'Choose another path, or stop what uses it' },
  EXDEV: { reason: 'the move crosses file systems', fix: 'Choose an output on the same disk as its folder' },
  EROFS: { reason: 'read-only file system', fix: 'Write to a writable disk, or remount this one read-write', path: true },
  EACCES: { reason: 'permission denied', fix: 'Write to a folder you may write to, or fix its permissions', path: true },
  EPERM: { reason: 'operation not permitted', fix: 'Write to a folder you may write to, or fix its permissions', path: true },
  ENOTDIR: { reason: 'a file is in the way', fix: 'A folder is needed there: choose another path, or move that file away', path: true },
  EISDIR: { reason: 'it is a folder, not a file', fix: 'Choose a file path, not a folder', path: true },
  EEXIST: { reason: 'it already exists', fix: 'Choose another path, or move it away', path: true },
  ELOOP: { reason: 'symlink loop', fix: 'Symlinks on that path point back at each other: fix them, or choose another path', path: true },
  ENAMETOOLONG: { reason: 'the name is too long', fix: 'Choose a shorter path', path: true },
};

/**
 * Errno codes that say the path itself cannot be written (read-only, no permission, a file in the
 * way, a symlink loop): bad input, fixed by choosing another path. The others (disk full, I/O error)
 * are failures of the environment: the same command works once it is fixed. The CLI error boundary
 * (src/util/cli-errors.ts) maps the first to exit 2 and the second to exit 1.
 */
export function isPathCode(code: string): boolean {
  return CODES[code]?.path === true;
}

/** The plain-language reason for an errno code ("read-only file system"), or the code itself. */
export function codeReason(code: string): string {
  return CODES[code]?.reason ?? `system error ${code}`;
}

export function isErrno(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code!);
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

/**
 * A file-system operation the environment refused, for every command the same way:
 *
 *   message  `cannot <action> <file>: <plain-language reason> (<code>)[; <detail>]`
 *   fix      what to do about it (by code), printed after the message by the CLI error boundary.
 *
 * e.g. "cannot write /data/hf/model.safetensors: no space left on device (ENOSPC); this write
 * needs 1.2 MiB and the disk has 12.0 KiB free". Temp files are already removed when it is thrown.
 * Exit code (src/util/cli-errors.ts): 2 when the path cannot be written (isPathCode), else 1.
 */
export class IoError extends Error {
  readonly fix: string;
  constructor(
    readonly file: string,
    readonly code: string,
    /** A verb phrase: "write", "append to", "create the run folder"; the message reads "cannot <action> <file>". */
    readonly action: string,
    readonly need?: IoNeed,
    readonly freeBytes?: number | null,
    /** More about this case, e.g. which file is in the way. */
    readonly detail?: string,
  ) {
    super(IoError.text(file, code, action, need, freeBytes, detail));
    this.name = 'IoError';
    this.fix = CODES[code]?.fix ?? 'Check the path and the disk, then run again';
  }

  static text(file: string, code: string, action: string, need?: IoNeed, free?: number | null, detail?: string): string {
    const space =
      (code === 'ENOSPC' || code === 'EDQUOT') && need
        ? `; ${need.what ?? 'this write'} needs ${formatBytes(need.bytes)}${free !== undefined && free !== null ? ` and the disk has ${formatBytes(free)} free` : ''}`
        : '';
    return `cannot ${action} ${file}: ${codeReason(code)} (${code})${space}${detail ? `; ${detail}` : ''}`;
  }

  /** The errno error `e` as an IoError about `file` (an IoError is returned as it is); null when `e` is not an errno error. */
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

// ---------------------------------------------------------------------------------------------
// Files

/** fsync a folder so renames in it survive power loss (not possible on every OS: skipped there). */
export function syncFolder(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw e;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export interface AtomicFileOptions {
  /** fsync the file before the rename (default true). */
  fsync?: boolean;
  /** fsync the folder after the rename (default false). */
  syncFolder?: boolean;
  /**
   * Turn a refused write into an IoError "cannot <action> <path>: ..." that names the bytes the
   * file needed (e.g. 'write'); without it, errors are thrown as they came.
   */
  action?: string;
  /** Runs once the temp file is open, before its first byte (test-only fault injection, src/train/run/faults.ts). */
  beforeWrite?: () => void;
}

/**
 * Replace `path` with `data` atomically: temp file beside it, fsync, rename. On failure the temp
 * file is removed and the old file (if any) is untouched.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicFileOptions = {}): void {
  const tmp = tempPath(path);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    opts.beforeWrite?.();
    writeFileSync(fd, data);
    if (opts.fsync ?? true) fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    if (opts.action === undefined) throw e;
    rethrowIo(e, path, opts.action, { bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength });
  }
  if (opts.syncFolder) syncFolder(dirname(path));
}

/**
 * Write `path` piece by piece through `write` (it gets the open file): with `atomic` (default) in
 * a temp file beside it that is renamed into place once complete; without, in place (for a file
 * inside a folder that is itself a temp folder). fsynced before it is closed unless `fsync` is
 * false. On failure the temp file is removed. Returns what `write` returned.
 */
export async function writeFileDurable<T>(path: string, write: (fh: FileHandle) => Promise<T>, opts: { fsync?: boolean; atomic?: boolean } = {}): Promise<T> {
  const atomic = opts.atomic ?? true;
  const target = atomic ? tempPath(path) : path;
  const fh = await open(target, 'w');
  let out: T;
  try {
    out = await write(fh);
    if (opts.fsync ?? true) await fh.sync();
  } catch (e) {
    await fh.close();
    if (atomic) await rm(target, { force: true });
    throw e;
  }
  await fh.close();
  if (atomic) await rename(target, path);
  return out;
}

/** Write a text file in place and fsync it (unless `fsync` is false); its folder is created if needed. For files inside a temp folder. */
export async function writeSyncedText(path: string, text: string, fsync = true): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileDurable(path, (fh) => fh.writeFile(text, 'utf8'), { atomic: false, fsync });
}

/** Files of a folder written by writeSyncedText, relative path -> text. */
export async function writeFiles(dir: string, files: ReadonlyMap<string, string>): Promise<void> {
  for (const [rel, text] of files) await writeSyncedText(join(dir, rel), text);
}

/** Append one line; if it did not fit whole, cut the file back to where it was (no torn line). */
export function appendLine(path: string, line: string, action: string, beforeWrite?: () => void): void {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    // no file yet: the append creates it
  }
  try {
    beforeWrite?.();
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

// ---------------------------------------------------------------------------------------------
// Folders

export interface AtomicFolderOptions {
  /** fsync the parent folder once the new folder is in place (default false). */
  syncParent?: boolean;
  /** Called once a previous folder was moved aside to `<out>.old-…` (crash tests stop there). */
  onMovedAside?: () => void | Promise<void>;
  /**
   * Runs once the new folder is in place, before the previous one is removed (checkpoints move
   * `latest` here). If it throws, the previous folder is left as `<out>.old-…`.
   */
  afterSwap?: () => void | Promise<void>;
  /**
   * Keep the previous folder: moved to this path (beside `out`) instead of removed. For outputs
   * whose old contents the command did not necessarily write (export.js --force).
   */
  setAsideAs?: string;
  /**
   * Turn a refused file-system operation into an IoError "cannot <action> <out>: ..." (e.g.
   * 'write'); without it, errors are thrown as they came.
   */
  action?: string;
  /** With `action`: what the folder needs, named when the disk is full. */
  need?: IoNeed;
}

/**
 * Build `out` with `fill(tmpDir)` in `<out>.tmp-<pid>-<hex>` beside it and swap it into place; an
 * existing `out` is moved to `<out>.old-<pid>-<hex>` first and removed after (rename() cannot
 * replace a non-empty folder), or kept at `setAsideAs`. `out`'s parent is created if needed. So
 * `out` is always absent, the previous complete folder, or the new complete one.
 */
export async function replaceFolderAtomic(out: string, fill: (tmp: string) => Promise<void>, opts: AtomicFolderOptions = {}): Promise<void> {
  try {
    await replaceFolderIn(out, fill, opts);
  } catch (e) {
    if (opts.action === undefined) throw e;
    rethrowIo(e, out, opts.action, opts.need);
  }
}

async function replaceFolderIn(out: string, fill: (tmp: string) => Promise<void>, opts: AtomicFolderOptions): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  const tmp = tempPath(out);
  await mkdir(tmp);
  try {
    await fill(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = opts.setAsideAs ?? `${out}.old-${uniqueSuffix()}`;
  let moved = false;
  try {
    await rename(out, old);
    moved = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  if (moved) await opts.onMovedAside?.();
  try {
    await rename(tmp, out);
  } catch (e) {
    // Put the previous folder back rather than leave its name empty.
    if (moved) await rename(old, out);
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  if (opts.syncParent) syncFolder(dirname(out));
  await opts.afterSwap?.();
  if (moved && opts.setAsideAs === undefined) await rm(old, { recursive: true, force: true });
}
