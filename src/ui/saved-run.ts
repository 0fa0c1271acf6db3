/**
 * A run folder for `dashboard.js`, followed while it changes: metrics.jsonl (tailed: the bytes
 * appended since the last look, a line still being written waits for its newline, a file that got
 * shorter or was replaced — a resume cuts the steps after its checkpoint — is read again from the
 * start), header.json (written by train.js since the dashboard exists; read again when it
 * changes) and plan.txt (older runs), each checked with the same schemas as the live path.
 *
 * The run's state is what the folder says, never a guess: `running` while a live process holds
 * `<dir>/lock` (src/train/run/run-dir.ts), `done` once no process does and the last step reached
 * schedule.steps, `stopped` when it did not, `saved` when neither can be told (no lock and no
 * schedule.steps in header.json). Bad input at the start is a UiError naming the file and the fix;
 * a bad line appended later is printed once and left out (the dashboard keeps serving).
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { bootId, pidAlive } from '../util/process.ts';
import { UiError } from './errors.ts';
import { parseHeader } from './header.ts';
import type { Hub } from './hub.ts';
import type { RunStatus, UiHeader } from './protocol.ts';

/** How often a followed run's files are looked at. */
export const FOLLOW_INTERVAL_MS = 500;

/** Run folders one or two levels below `dir` (an experiment folder holds one per variant). */
function runsBelow(dir: string, cwd: string): string[] {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name === 'checkpoints') continue;
      const sub = join(d, e.name);
      if (existsSync(join(sub, 'metrics.jsonl'))) found.push(relative(cwd, sub) || '.');
      else if (depth < 2) walk(sub, depth + 1);
    }
  };
  walk(dir, 1);
  return found.sort().slice(0, 8);
}

function readHeader(dir: string): UiHeader | null {
  const path = join(dir, 'header.json');
  if (existsSync(path)) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new UiError(
        `${path}: not valid JSON (${(e as Error).message}). train.js writes it at the start of a run; delete it to show the run without its header`,
      );
    }
    const r = parseHeader(raw);
    if ('error' in r) throw new UiError(`${path}: ${r.error}. train.js writes it at the start of a run; delete it to show the run without its header`);
    return r.header;
  }
  const plan = join(dir, 'plan.txt');
  return existsSync(plan) ? { plan: readFileSync(plan, 'utf8') } : null;
}

/** Who holds `<dir>/lock`, as far as this machine can tell. */
export type LockState =
  { held: 'none' } | { held: 'live'; pid: number } | { held: 'stale'; pid: number; why: string } | { held: 'elsewhere'; pid: number; host: string };

export function lockState(dir: string): LockState {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'));
  } catch {
    // No lock, or one being written right now (it is linked in whole, so this is rare): not held.
    return { held: 'none' };
  }
  const l = raw as { pid?: unknown; host?: unknown; bootId?: unknown };
  if (typeof l.pid !== 'number' || typeof l.host !== 'string') return { held: 'none' };
  if (l.host !== hostname()) return { held: 'elsewhere', pid: l.pid, host: l.host };
  const boot = bootId();
  if (typeof l.bootId === 'string' && boot && l.bootId !== boot) return { held: 'stale', pid: l.pid, why: 'the machine has rebooted since' };
  return pidAlive(l.pid) ? { held: 'live', pid: l.pid } : { held: 'stale', pid: l.pid, why: 'that process is no longer running' };
}

/** The run's state from its lock, its last step and schedule.steps, with a message when it is not plain. */
export function runState(lock: LockState, lastStep: number | null, total: number | null, dir: string): { status: RunStatus; message?: string } {
  if (lock.held === 'live') return { status: 'running' };
  if (lock.held === 'elsewhere')
    return {
      status: 'running',
      message: `${dir}/lock is held by pid ${lock.pid} on host ${lock.host}: taken as running (that host cannot be checked from here)`,
    };
  const at = lastStep === null ? 'before its first step' : `at step ${lastStep}${total !== null ? ` of ${total}` : ''}`;
  const stale = lock.held === 'stale' ? ` (its lock names pid ${lock.pid}, but ${lock.why})` : '';
  if (total === null) return { status: 'saved', ...(stale ? { message: `no process is training it${stale}` } : {}) };
  if (lastStep !== null && lastStep >= total) return { status: 'done' };
  return { status: 'stopped', message: `stopped ${at}: no process is training it${stale}; node train.js --config <its config> --resume continues it` };
}

export interface FollowedRun {
  readonly run: number;
  /** Look at the files now (the timer does this every interval). */
  poll(): void;
  /** Stop looking. */
  close(): void;
}

export interface FollowOptions {
  cwd?: string;
  /** Look at the files this often (ms); 0: read them once, no timer. */
  intervalMs?: number;
  /** Where problems found while following are printed (once each). */
  warn?: (line: string) => void;
}

const FINGERPRINT = 256;

/** Tail of one metrics.jsonl: complete lines since the last read, and whether the file was cut or replaced. */
class Tail {
  private offset = 0;
  private ino = -1;
  /** The last bytes before `offset`, to notice a file rewritten to the same length or longer. */
  private tail = Buffer.alloc(0);
  lines = 0;

  constructor(readonly path: string) {}

  /** New complete lines; `reset` when the file is not the one read so far (read again from the start). */
  read(): { lines: string[]; reset: boolean; partial: boolean } {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      // Moved aside (--overwrite) and not yet written again: nothing now; a new file starts over.
      const reset = this.offset > 0;
      if (reset) this.restart(-1);
      return { lines: [], reset, partial: false };
    }
    try {
      const st = fstatSync(fd);
      let reset = false;
      if (st.ino !== this.ino || st.size < this.offset || !this.sameTail(fd)) {
        reset = this.offset > 0 || this.ino !== -1;
        this.restart(st.ino);
      }
      if (st.size === this.offset) return { lines: [], reset, partial: false };
      const buf = Buffer.alloc(st.size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      const chunk = buf.subarray(0, n);
      const end = chunk.lastIndexOf(0x0a);
      if (end < 0) return { lines: [], reset, partial: true };
      const text = chunk.subarray(0, end + 1).toString('utf8');
      this.offset += end + 1;
      const keep = Buffer.concat([this.tail, chunk.subarray(0, end + 1)]);
      this.tail = keep.subarray(Math.max(0, keep.length - FINGERPRINT));
      const lines = text.split('\n');
      lines.pop();
      return { lines, reset, partial: end + 1 < n };
    } finally {
      closeSync(fd);
    }
  }

  private restart(ino: number): void {
    this.offset = 0;
    this.ino = ino;
    this.tail = Buffer.alloc(0);
    this.lines = 0;
  }

  private sameTail(fd: number): boolean {
    if (!this.tail.length) return true;
    const now = Buffer.alloc(this.tail.length);
    const n = readSync(fd, now, 0, now.length, this.offset - this.tail.length);
    return n === this.tail.length && now.equals(this.tail);
  }
}

/**
 * Show the run at `arg` (a run folder or its metrics.jsonl) and follow it: records are published
 * as they are appended, the status as it changes. A folder without metrics.jsonl is accepted while
 * a live process holds its lock (a run that has not logged yet).
 */
export function followRun(hub: Hub, arg: string, label: string, opts: FollowOptions = {}): FollowedRun {
  const cwd = opts.cwd ?? process.cwd();
  const warn = opts.warn ?? ((l: string) => console.error(l));
  const path = resolve(cwd, arg);
  if (!existsSync(path))
    throw new UiError(`${arg}: no such folder. Give a run folder train.js wrote (its logging.dir, e.g. runs/small-moe), which holds metrics.jsonl`);
  const isFile = statSync(path).isFile();
  const dir = isFile ? dirname(path) : path;
  const metrics = isFile ? path : join(dir, 'metrics.jsonl');
  if (isFile && !basename(path).endsWith('.jsonl')) throw new UiError(`${arg}: not a run folder or a metrics .jsonl file`);
  const shown = relative(cwd, dir) || '.';
  if (!existsSync(metrics) && lockState(dir).held !== 'live') {
    const below = runsBelow(dir, cwd);
    const hint = below.length
      ? `; run folders below it: ${below.join(', ')}`
      : '; train into it first with node train.js --config <file> (logging.dir names the folder)';
    throw new UiError(`${arg}: no metrics.jsonl in this folder, so it is not a run folder${hint}`);
  }
  if (existsSync(metrics) && !readFileSync(metrics, 'utf8').trim() && lockState(dir).held !== 'live')
    throw new UiError(`${metrics}: empty, the run has not logged anything yet (watch a run live with node train.js --config <file> --ui)`);

  const run = hub.addRun(label, shown, false, true);
  const headerPath = join(dir, 'header.json');
  let headerStamp = '';
  let header: UiHeader | null = null;
  const warned = new Set<string>();
  const once = (msg: string) => {
    if (!warned.has(msg)) warn(msg);
    warned.add(msg);
  };
  const stampOf = () => {
    try {
      const st = statSync(headerPath);
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return '';
    }
  };
  const loadHeader = (atStart: boolean) => {
    const stamp = stampOf();
    if (stamp === headerStamp && !atStart) return;
    headerStamp = stamp;
    try {
      const h = readHeader(dir);
      if (h) {
        header = h;
        hub.header(run, h);
      }
    } catch (e) {
      if (atStart || !(e instanceof UiError)) throw e;
      once(`[dashboard] ${e.message}`);
    }
  };

  const tail = new Tail(metrics);
  let lastStep: number | null = null;
  let status = '';
  let partialSeen = false;

  const publish = (lines: string[], atStart: boolean) => {
    for (const line of lines) {
      const n = ++tail.lines;
      if (!line.trim()) continue;
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch (e) {
        const msg = `${metrics}:${n}: not valid JSON (${(e as Error).message}); fix or delete that line`;
        if (atStart) throw new UiError(msg);
        once(`[dashboard] ${msg} (left out)`);
        continue;
      }
      const problem = hub.record(run, raw);
      if (problem) {
        if (atStart) throw new UiError(`${metrics}:${n}: ${problem}`);
        once(`[dashboard] ${metrics}:${n}: ${problem} (left out)`);
        continue;
      }
      const r = raw as { kind?: unknown; step?: unknown };
      if (r.kind === 'train' && typeof r.step === 'number') lastStep = r.step;
    }
  };

  const poll = (atStart = false) => {
    // The lock first: whatever was written before it was released is read below.
    const lock = lockState(dir);
    loadHeader(atStart);
    const got = tail.read();
    if (got.reset && !atStart) {
      // A resume cut the log back to its checkpoint, or the file was replaced: start over.
      hub.reset(run);
      lastStep = null;
      loadHeader(true);
    }
    publish(got.lines, atStart);
    const total = (header?.config?.schedule as { steps?: unknown } | undefined)?.steps;
    const state = runState(lock, lastStep, typeof total === 'number' ? total : null, shown);
    if (got.partial && lock.held !== 'live' && lock.held !== 'elsewhere' && !partialSeen) {
      // A run killed mid-write leaves a cut last line (no newline after it): the rest is good.
      partialSeen = true;
      warn(`[dashboard] ${metrics}: a cut last line (the run was stopped mid-write), left out`);
    }
    const key = `${state.status}|${state.message ?? ''}`;
    if (key !== status) {
      status = key;
      hub.status(run, state.status, state.message);
    }
  };

  poll(true);
  const interval = opts.intervalMs ?? FOLLOW_INTERVAL_MS;
  const timer =
    interval > 0
      ? setInterval(() => {
          try {
            poll();
          } catch (e) {
            once(`[dashboard] ${shown}: ${e instanceof Error ? e.message : String(e)} (still following)`);
          }
        }, interval)
      : null;
  timer?.unref();
  return {
    run,
    poll: () => poll(),
    close: () => {
      if (timer) clearInterval(timer);
    },
  };
}
