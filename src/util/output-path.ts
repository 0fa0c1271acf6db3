/**
 * Where a command may write, checked before it does any work (docs/RELIABILITY.md, "Output paths"):
 *
 *   checkApart          an output is never an input (a run folder, a checkpoint, a model folder),
 *                       inside one, or a folder holding one; symlinks resolved, so another spelling
 *                       of the same folder is the same folder (OutputPathError, exit 2);
 *   checkWritable       the output can be created: not a file, not under a file, no symlink loop,
 *                       not on a read-only disk or a folder without permission (IoError, exit 2 by
 *                       the table in src/util/cli-errors.ts); nothing is written to find out;
 *   setAsidePath        where --force moves an old output's files (`<out>.set-aside-<time>`), and
 *   listFiles           what they were, for the message: nothing is deleted that the command did
 *                       not write.
 */
import { accessSync, constants, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { IoError, isErrno } from './atomic-write.ts';

/** An output that is an input, inside one, or holds one: bad input (exit 2), nothing written. */
export class OutputPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputPathError';
  }
}

/** A path as the user can type it from `cwd`: relative when inside it, absolute otherwise. */
export function shown(p: string, cwd: string = process.cwd()): string {
  const r = relative(cwd, p);
  return r === '' ? '.' : !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

/**
 * `p` with every symlink resolved: the real path of its nearest existing ancestor, plus the rest.
 * A symlink loop or a file in the way is an IoError (`action` names what was to be done).
 */
export function realPath(p: string, action: string): string {
  const abs = resolve(p);
  let head = abs;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...rest);
    } catch (e) {
      if (!isErrno(e)) throw e;
      if (e.code !== 'ENOENT' || dirname(head) === head) throw new IoError(abs, e.code!, action, undefined, undefined, inTheWay(abs));
      rest.unshift(basename(head));
      head = dirname(head);
    }
  }
}

/** For ENOTDIR: which part of `p` is a file ("runs/t is a file"), or undefined. */
function inTheWay(p: string): string | undefined {
  for (let a = dirname(p); dirname(a) !== a; a = dirname(a)) {
    try {
      if (!statSync(a).isDirectory()) return `${shown(a)} is a file`;
    } catch {
      // missing or unreadable: look further up
    }
  }
  return undefined;
}

/** How `a` relates to `b` (both real paths): the same folder, inside it, holding it, or apart (null). */
export function relation(a: string, b: string): 'same' | 'inside' | 'contains' | null {
  if (a === b) return 'same';
  if (a.startsWith(b.endsWith(sep) ? b : b + sep)) return 'inside';
  if (b.startsWith(a.endsWith(sep) ? a : a + sep)) return 'contains';
  return null;
}

export interface ProtectedInput {
  /** The folder that must survive: a run folder, a checkpoint folder, a model folder. */
  path: string;
  /** What it is, for the message: "the run being read", "the model folder being read". */
  what: string;
  /** How the user named it, e.g. "--checkpoint runs/t/checkpoints/step-3". */
  via: string;
}

/**
 * Refuse an output `out` (set by `flag`; `label` names it when the user did not pass the flag, e.g.
 * "the default output folder") that is one of `inputs`, inside one, or holds one;
 * `allowed` lists real paths inside an input that are nevertheless the command's own (forecast.js's
 * `<run>/forecast`). `suffix` makes the suggested folder (`<input>-<suffix>`, beside the input).
 */
export function checkApart(
  out: string,
  inputs: readonly ProtectedInput[],
  flag: string,
  opts: { cwd?: string; suffix: string; allowed?: readonly string[]; label?: string },
): void {
  const cwd = opts.cwd ?? process.cwd();
  const o = realPath(out, 'write');
  for (const input of inputs) {
    const i = realPath(input.path, 'read');
    const rel = relation(o, i);
    if (!rel || (opts.allowed ?? []).some((a) => realPath(a, 'write') === o)) continue;
    const O = `${opts.label ?? flag} ${shown(out, cwd)}`;
    const I = shown(input.path, cwd);
    const link = o !== resolve(out) ? ` (${shown(out, cwd)} resolves to ${shown(o, cwd)})` : '';
    const how = rel === 'same' ? `is ${input.what}, ${I}` : rel === 'inside' ? `is inside ${input.what}, ${I}` : `holds ${input.what}, ${I}`;
    throw new OutputPathError(
      `${O} ${how}${link} (${input.via}). Writing there could replace or mix files with it: an output is never an input, inside one, or a folder that holds one. ` +
        `Choose an ${flag} outside ${I} (e.g. ${flag} ${shown(`${i}-${opts.suffix}`, cwd)})`,
    );
  }
}

/**
 * Check that the folder `out` can be created or replaced, without writing anything: it is a
 * folder or does not exist, no part of its path is a file, no symlink loop, and its nearest existing
 * folder is writable (a read-only disk says EROFS, a folder without permission EACCES; root passes
 * permission checks, as its writes would). Throws an IoError naming `out`.
 */
export function checkWritable(out: string, action = 'write'): void {
  const abs = resolve(out);
  let existing = abs;
  for (;;) {
    try {
      const s = statSync(existing);
      if (!s.isDirectory()) {
        if (existing === abs) throw new IoError(abs, 'ENOTDIR', action, undefined, undefined, `${shown(abs)} is a file, and the output is a folder`);
        throw new IoError(abs, 'ENOTDIR', action, undefined, undefined, `${shown(existing)} is a file`);
      }
      break;
    } catch (e) {
      if (e instanceof IoError) throw e;
      if (!isErrno(e)) throw e;
      if (e.code === 'ENOENT' && dirname(existing) !== existing) {
        existing = dirname(existing);
        continue;
      }
      throw new IoError(abs, e.code!, action, undefined, undefined, e.code === 'ENOTDIR' ? inTheWay(abs) : undefined);
    }
  }
  // The new folder is built beside `out` and renamed into place: its parent must be writable too.
  const probe = existing === abs ? dirname(abs) : existing;
  for (const p of new Set([existing, probe])) {
    try {
      accessSync(p, constants.W_OK);
    } catch (e) {
      if (!isErrno(e)) throw e;
      throw new IoError(abs, e.code!, action, undefined, undefined, p !== abs ? `${shown(p)} cannot be written` : undefined);
    }
  }
}

/** `<time>`: ISO time with ':' made safe for file names (as the run folder's set-aside/ uses). */
export function stamp(): string {
  return new Date()
    .toISOString()
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z');
}

/** A name beside `out` for its old contents: `<out>.set-aside-<time>[-N]`, not yet taken. */
export function setAsidePath(out: string): string {
  const base = `${resolve(out)}.set-aside-${stamp()}`;
  let p = base;
  for (let i = 2; exists(p); i++) p = `${base}-${i}`;
  return p;
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The files under `dir` (relative paths, sorted; folders end in "/" when empty), at most `max` then "… (N more)". */
export function listFiles(dir: string, max = 20): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    const entries = readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    if (!entries.length && rel) out.push(`${rel}/`);
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.length > max ? [...out.slice(0, max), `… (${out.length - max} more)`] : out;
}
