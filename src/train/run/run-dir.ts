/**
 * The run folder (`logging.dir`): where its files are, whether it already holds a run, the lock
 * that keeps a second process out, and moving an old run aside (never deleting it).
 *
 * Rules (docs/RELIABILITY.md): a fresh run into a folder that holds a run is refused unless
 * --overwrite moves the old run into `<dir>/set-aside/<time>-overwritten/`; one process per folder
 * (`<dir>/lock`: pid, host, boot id, start time, command; a lock whose process is gone is stale,
 * named and replaced); an absolute logging.dir is used as given, a relative one is under the cwd.
 */
import {
  accessSync,
  constants,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { bootId, pidAlive } from '../../util/process.ts';
import { injectFault } from './faults.ts';
import { isErrno, rethrowIo, writeFileAtomic } from '../../util/atomic-write.ts';

/** A run folder that cannot be used as asked (exit 2): the message says why and what to do. */
export class RunFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFolderError';
  }
}

export interface RunPaths {
  /** Absolute. */
  dir: string;
  checkpoints: string;
  metrics: string;
  plan: string;
  /** What the run says about itself at the start (config, size, adapter, plan), for dashboard.js. */
  header: string;
  profile: string;
  /** The run's findings (src/train/run/diagnosis.ts), rewritten whenever they change. */
  findings: string;
  lock: string;
  setAside: string;
}

/** The files that make up a run: what --overwrite moves aside. Other files in the folder stay. */
const RUN_FILES = ['metrics.jsonl', 'checkpoints', 'plan.txt', 'header.json', 'profile.json', 'findings.json'] as const;

export function runPaths(cwd: string, loggingDir: string): RunPaths {
  const dir = resolve(cwd, loggingDir);
  return {
    dir,
    checkpoints: join(dir, 'checkpoints'),
    metrics: join(dir, 'metrics.jsonl'),
    plan: join(dir, 'plan.txt'),
    header: join(dir, 'header.json'),
    profile: join(dir, 'profile.json'),
    findings: join(dir, 'findings.json'),
    lock: join(dir, 'lock'),
    setAside: join(dir, 'set-aside'),
  };
}

/** A path as the user can use it from `cwd`: relative when inside it, absolute otherwise. */
export function shownPath(p: string, cwd: string = process.cwd()): string {
  const r = relative(cwd, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : r === '' ? '.' : p;
}

/** The last `"step": N` of a train line in the metrics log's tail (cheap on a long log). */
function lastTrainStep(file: string): number | null {
  try {
    const text = readFileSync(file, 'utf8');
    const m = [...text.slice(-65536).matchAll(/"kind":"train","step":(\d+)/g)];
    return m.length ? Number(m[m.length - 1]![1]) : null;
  } catch {
    return null;
  }
}

/** What run the folder holds, as short phrases for a message, or null when it holds none. */
export function describeRun(paths: RunPaths): string[] | null {
  const found: string[] = [];
  if (existsSync(paths.metrics) && statSync(paths.metrics).size > 0) {
    const step = lastTrainStep(paths.metrics);
    found.push(`metrics.jsonl${step !== null ? ` up to step ${step}` : ''}`);
  }
  if (existsSync(paths.checkpoints)) {
    const names = readdirSync(paths.checkpoints).filter((n) => n !== 'latest');
    if (names.length) found.push(`checkpoints ${names.sort().slice(0, 6).join(', ')}${names.length > 6 ? ', ...' : ''}`);
  }
  return found.length ? found : null;
}

/**
 * A fresh run (no --resume) may start only in a folder without a run; with --overwrite the old run
 * is moved aside at commit time. Returns the run files to move aside (empty: nothing to do).
 */
export function checkFreshRun(paths: RunPaths, overwrite: boolean, cwd: string): string[] {
  const run = describeRun(paths);
  if (!run) return [];
  if (!overwrite) {
    const d = shownPath(paths.dir, cwd);
    throw new RunFolderError(
      `${d} already holds a run (${run.join('; ')}). A fresh run would mix its files with that one. ` +
        `Continue that run with --resume, start this one in a new folder (--set logging.dir=${d}-2), ` +
        `or pass --overwrite to move the old run into ${shownPath(paths.setAside, cwd)}/ (nothing is deleted)`,
    );
  }
  return RUN_FILES.filter((f) => existsSync(join(paths.dir, f)));
}

function stamp(): string {
  return new Date()
    .toISOString()
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z');
}

/**
 * Move `entries` (paths inside the run folder, or inside its checkpoints folder) into a new
 * `<dir>/set-aside/<time>-<label>/`, keeping their relative layout. Renames only: no space needed,
 * nothing copied or deleted. Returns that folder.
 */
export function setAside(paths: RunPaths, label: string, entries: readonly string[], extra?: { name: string; text: string }): string {
  let folder = join(paths.setAside, `${stamp()}-${label}`);
  for (let i = 2; existsSync(folder); i++) folder = join(paths.setAside, `${stamp()}-${label}-${i}`);
  try {
    mkdirSync(folder, { recursive: true });
    if (extra) writeFileAtomic(join(folder, extra.name), extra.text);
    for (const e of entries) {
      const to = join(folder, relative(paths.dir, e));
      mkdirSync(dirname(to), { recursive: true });
      renameSync(e, to);
    }
  } catch (e) {
    rethrowIo(e, folder, 'move the old run aside into');
  }
  return folder;
}

const LockSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  bootId: z.string().nullable().optional(),
  startedAt: z.string(),
  command: z.string().optional(),
});
type LockInfo = z.infer<typeof LockSchema>;

function describeLock(l: LockInfo): string {
  return `pid ${l.pid} on host ${l.host}, started ${l.startedAt}${l.command ? `: ${l.command}` : ''}`;
}

/** One process per run folder. Acquire before any check that reads the folder, release on every exit path. */
export class RunLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly paths: RunPaths,
    /** The first folder this lock had to create (removed again if the run never starts), or null. */
    private readonly created: string | null,
  ) {
    process.on('exit', this.onExit);
  }

  /**
   * Create the folder if needed and take `<dir>/lock` atomically (hard link of a complete temp
   * file: a reader never sees a half-written lock). A stale lock is named on `log` and replaced.
   */
  static acquire(paths: RunPaths, cwd: string, log: (line: string) => void): RunLock {
    let created: string | null = null;
    try {
      created = mkdirSync(paths.dir, { recursive: true }) ?? null;
    } catch (e) {
      const code = mkdirErrorCode(paths.dir, e);
      if (code === 'EEXIST' || code === 'ENOTDIR')
        throw new RunFolderError(
          `logging.dir ${shownPath(paths.dir, cwd)} cannot be created: a file is in the way (${code}). Set logging.dir to a folder path`,
        );
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
        throw new RunFolderError(
          `logging.dir ${shownPath(paths.dir, cwd)} cannot be created (${code}: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'}). Set logging.dir to a folder you can write`,
        );
      rethrowIo(e, paths.dir, 'create the run folder');
    }
    if (!statSync(paths.dir).isDirectory())
      throw new RunFolderError(`logging.dir ${shownPath(paths.dir, cwd)} is a file, not a folder. Set logging.dir to a folder path`);
    const info: LockInfo = {
      pid: process.pid,
      host: hostname(),
      bootId: bootId(),
      startedAt: new Date().toISOString(),
      command: `node train.js ${process.argv.slice(2).join(' ')}`.trim(),
    };
    const tmp = `${paths.lock}.tmp-${process.pid}`;
    let taken = false;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          injectFault('lock');
          writeFileSync(tmp, `${JSON.stringify(info)}\n`);
          linkSync(tmp, paths.lock);
          taken = true;
          return new RunLock(paths, created);
        } catch (e) {
          // A folder that cannot be written is bad input, said plainly (not as an I/O failure or a full disk).
          if (isErrno(e) && (e.code === 'EROFS' || e.code === 'EACCES' || e.code === 'EPERM')) throw unwritable(paths, cwd, e.code);
          // EEXIST again after replacing a stale lock: another process took it meanwhile; read that one.
          if (!isErrno(e) || e.code !== 'EEXIST' || attempt > 2) rethrowIo(e, paths.lock, 'write the run lock');
        }
        const held = RunLock.read(paths, cwd);
        const sameHost = held.host === info.host;
        const rebooted = sameHost && !!held.bootId && !!info.bootId && held.bootId !== info.bootId;
        const gone = sameHost && (rebooted || !pidAlive(held.pid));
        if (!gone) {
          const other = held.host !== info.host;
          throw new RunFolderError(
            `${shownPath(paths.dir, cwd)} is in use by another run (${describeLock(held)}; lock file ${shownPath(paths.lock, cwd)}). ` +
              `Wait for it to finish or stop it, or give this run its own folder (--set logging.dir=...)` +
              (other ? `. That host cannot be checked from here: if that run is over, delete the lock file` : ''),
          );
        }
        log(
          `[lock] ${shownPath(paths.lock, cwd)}: replacing a stale lock (${describeLock(held)}; ${rebooted ? 'the machine has rebooted since' : 'that process is no longer running'})`,
        );
        rmSync(paths.lock, { force: true });
      }
    } finally {
      rmSync(tmp, { force: true });
      // Refused or failed: leave no folder this call created.
      if (!taken && created) removeEmpty(paths.dir, created);
    }
  }

  private static read(paths: RunPaths, cwd: string): LockInfo {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(paths.lock, 'utf8'));
    } catch (e) {
      throw new RunFolderError(
        `${shownPath(paths.lock, cwd)} is not a lock file this program wrote (${e instanceof Error ? e.message : String(e)}): if no run is using ${shownPath(paths.dir, cwd)}, delete it`,
      );
    }
    const r = LockSchema.safeParse(raw);
    if (!r.success)
      throw new RunFolderError(
        `${shownPath(paths.lock, cwd)} is not a lock file this program wrote (${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}): if no run is using ${shownPath(paths.dir, cwd)}, delete it`,
      );
    return r.data;
  }

  /** Remove the lock (if still ours); with `abandon`, also the folders it created, when they are empty. */
  release(abandon = false): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    try {
      const held = LockSchema.safeParse(JSON.parse(readFileSync(this.paths.lock, 'utf8')));
      if (held.success && held.data.pid === process.pid) rmSync(this.paths.lock, { force: true });
    } catch {
      // already gone
    }
    if (abandon && this.created) removeEmpty(this.paths.dir, this.created);
  }
}

/**
 * The real reason a recursive mkdir failed. On a read-only file system Node's recursive mkdir can
 * report ENOENT for a nested path; asking the nearest existing folder for write access (access(2)
 * answers EROFS or EACCES) gives the reason to tell.
 */
function mkdirErrorCode(dir: string, e: unknown): string {
  const code = isErrno(e) && e.code ? e.code : String(e);
  if (code !== 'ENOENT') return code;
  let d = dirname(dir);
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  try {
    accessSync(d, constants.W_OK);
  } catch (a) {
    if (isErrno(a) && a.code) return a.code;
  }
  return code;
}

/** The lock could not be written: a read-only file system or a folder without write permission. */
function unwritable(paths: RunPaths, cwd: string, code: string): RunFolderError {
  const d = shownPath(paths.dir, cwd);
  const what = code === 'EROFS' ? 'is on a read-only file system' : 'is not writable (permission denied)';
  const fix = code === 'EROFS' ? 'remount it read-write' : `give this user write permission on ${d}`;
  return new RunFolderError(
    `logging.dir ${d} ${what} (${code} writing the run lock ${shownPath(paths.lock, cwd)}): a run writes its lock, metrics and checkpoints there. Nothing was written. ` +
      `Set logging.dir to a folder on a writable disk (--set logging.dir=...), or ${fix}; to continue a run saved there, copy its folder to a writable disk and --resume from the copy`,
  );
}

/** Remove `dir` and its parents up to `created` (the first folder mkdir made), while they are empty. */
function removeEmpty(dir: string, created: string): void {
  for (let d = dir; d === created || d.startsWith(created + sep); d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}
