/**
 * Which checkpoint a resume continues from, and what it passes over. `--resume` takes the one
 * `latest` names; when that one is unusable it falls back to the newest complete `step-N`, and
 * says so: every newer checkpoint it did not use is listed with the reason. `--resume-from <step |
 * dir>` names one. Either way this run's checkpoints newer than the chosen step are returned in
 * `newer`: commit.ts moves them aside (not deleting them), so the folder never mixes two histories.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CheckpointError, DIVERGED_RE, LATEST_FILE, NewerCheckpointError, OLD_RE, STATE_FILE, STEP_RE, TMP_RE, readCheckpointState, readLatestName, type CheckpointState } from '../persist/checkpoint.ts';
import { shownPath } from './run-dir.ts';

export interface Skipped {
  name: string;
  reason: string;
}

export interface ResumePick {
  /** The checkpoint folder (absolute). */
  dir: string;
  step: number;
  /** Its state.json, read and validated. */
  state: CheckpointState;
  /** Checkpoints passed over (the one `latest` names, newer ones), each with why. */
  skipped: Skipped[];
  /** Folders of this run's checkpoints after `step` (absolute): moved aside when the run starts. */
  newer: string[];
  /** True when `latest` must be re-pointed once `newer` is moved aside. */
  latestMoves: boolean;
}

interface Entry {
  name: string;
  dir: string;
  /** From state.json when it reads, else from the name; null for names without a step. */
  step: number | null;
  kind: 'step' | 'diverged' | 'named' | 'unfinished' | 'old-copy';
  /** Why it cannot be loaded (null: state.json is valid). */
  problem: string | null;
  /** Its state.json when valid. */
  state?: CheckpointState;
  /** Written by a newer webgpu-moe: the resume stops on it. */
  newer?: NewerCheckpointError;
}

async function inspect(root: string, name: string): Promise<Entry | null> {
  const dir = join(root, name);
  if (name === LATEST_FILE || name.startsWith(`${LATEST_FILE}.tmp-`)) return null;
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return null;
  }
  if (!isDir) return null;
  const tmp = TMP_RE.exec(name);
  if (tmp) {
    const base = name.slice(0, tmp.index);
    const m = STEP_RE.exec(base) ?? DIVERGED_RE.exec(base);
    return { name, dir, step: m ? Number(m[1]) : null, kind: 'unfinished', problem: `an unfinished save (temp folder of pid ${tmp[1]}; the next save removes it)` };
  }
  const kind: Entry['kind'] = OLD_RE.test(name) ? 'old-copy' : STEP_RE.test(name) ? 'step' : DIVERGED_RE.test(name) ? 'diverged' : 'named';
  const fromName = STEP_RE.exec(name) ?? DIVERGED_RE.exec(name) ?? STEP_RE.exec(OLD_RE.exec(name)?.[1] ?? '');
  try {
    const state = await readCheckpointState(dir);
    return { name, dir, step: state.step, kind, problem: null, state };
  } catch (e) {
    if (e instanceof NewerCheckpointError) return { name, dir, step: fromName ? Number(fromName[1]) : null, kind, problem: e.problem, newer: e };
    const problem = e instanceof CheckpointError ? (existsSync(join(dir, STATE_FILE)) ? `${STATE_FILE} ${e.problem}` : `no ${STATE_FILE} (incomplete, or the file was deleted)`) : String(e);
    return { name, dir, step: fromName ? Number(fromName[1]) : null, kind, problem };
  }
}

async function entries(root: string): Promise<Entry[]> {
  if (!existsSync(root)) return [];
  const out: Entry[] = [];
  for (const name of readdirSync(root).sort()) {
    const e = await inspect(root, name);
    if (e) out.push(e);
  }
  return out;
}

const stepsOf = (list: readonly Entry[]) =>
  list
    .filter((e) => e.kind === 'step' && !e.problem)
    .map((e) => e.step!)
    .sort((a, b) => a - b);

/** "step-3, step-6" (the usable step checkpoints) for messages. */
export async function availableSteps(root: string): Promise<string> {
  const s = stepsOf(await entries(root));
  return s.length ? s.map((n) => `step-${n}`).join(', ') : 'none';
}

function newerThan(list: readonly Entry[], chosen: Entry): Entry[] {
  return list.filter((e) => e.dir !== chosen.dir && e.kind !== 'old-copy' && e.step !== null && e.step > chosen.step!);
}

/** Why a newer checkpoint was not the one `latest` named. */
function reasonFor(e: Entry, cwd: string): string {
  if (e.problem) return e.problem;
  if (e.kind === 'diverged') return `saved after the validation loss diverged, so it is not marked latest (to continue from it anyway: --resume-from ${shownPath(e.dir, cwd)})`;
  return `complete, but latest was not moved to it (its save was interrupted before the pointer moved, or latest was edited); to continue from it: --resume-from ${e.kind === 'step' ? e.step : shownPath(e.dir, cwd)}`;
}

/**
 * A checkpoint in a newer format than this build reads stops the resume: skipping it would
 * continue from an older step and move it aside.
 */
function stopOnNewer(list: readonly Entry[], why: string): void {
  const newer = list.filter((e) => e.newer);
  if (!newer.length) return;
  const first = newer[0]!.newer!;
  const others = newer.length > 1 ? `; so are ${newer.slice(1).map((e) => e.name).join(', ')}` : '';
  throw new CheckpointError(first.file, `${first.problem}${others}. ${why}`, first.fix);
}

export async function pickResume(root: string, from: string | undefined, cwd: string): Promise<ResumePick> {
  const list = await entries(root);
  if (from !== undefined) return pickFrom(root, from, cwd, list);

  stopOnNewer(list, 'Skipping it would continue from an older step and move it aside, so --resume stops here');
  const skipped: Skipped[] = [];
  const latestName = await readLatestName(root);
  let chosen: Entry | undefined;
  if (latestName) {
    const named = list.find((e) => e.name === latestName);
    if (named && !named.problem) chosen = named;
    else {
      // A kill between the two renames of a replace leaves the previous copy as <name>.old-*.
      const old = list.find((e) => e.kind === 'old-copy' && OLD_RE.exec(e.name)?.[1] === latestName && !e.problem);
      skipped.push({ name: latestName, reason: named ? `latest names it, but it has ${named.problem}` : 'latest names it, but the folder does not exist' });
      if (old) {
        chosen = old;
        skipped[skipped.length - 1]!.reason += `; using the copy it was replacing, ${old.name}`;
      }
    }
  } else if (existsSync(join(root, LATEST_FILE))) skipped.push({ name: LATEST_FILE, reason: 'the pointer is empty or not a checkpoint name' });
  if (!chosen) {
    const good = list.filter((e) => e.kind === 'step' && !e.problem).sort((a, b) => b.step! - a.step!);
    chosen = good[0];
  }
  if (!chosen && list.length === 0 && skipped.length === 0) throw new CheckpointError(root, '--resume: no checkpoint under this folder (nothing was saved yet)', 'Train without --resume first');
  if (!chosen) {
    const rest = list.filter((e) => !skipped.some((k) => k.name === e.name));
    const found = rest.length ? rest.map((e) => `${e.name}: ${e.problem ?? (e.kind === 'diverged' ? 'saved after the run diverged' : 'not a step checkpoint')}`).join('; ') : 'nothing';
    throw new CheckpointError(
      root,
      `--resume: no usable checkpoint here (${[...skipped.map((s) => `${s.name}: ${s.reason}`), ...(rest.length || !skipped.length ? [`found: ${found}`] : [])].join('; ')})`,
      list.some((e) => e.kind === 'diverged' && !e.problem)
        ? `Continue from a diverged state with --resume-from <dir>, or start again without --resume (add --overwrite to move the old run aside)`
        : `Fix or restore one of them, or start again without --resume (add --overwrite to move the old run in ${shownPath(join(root, '..'), cwd)} aside)`,
    );
  }
  for (const e of newerThan(list, chosen)) if (!skipped.some((s) => s.name === e.name)) skipped.push({ name: e.name, reason: reasonFor(e, cwd) });
  const newer = newerThan(list, chosen).map((e) => e.dir);
  return { dir: chosen.dir, step: chosen.step!, state: chosen.state!, skipped, newer, latestMoves: newer.length > 0 || latestName !== chosen.name };
}

async function pickFrom(root: string, from: string, cwd: string, list: readonly Entry[]): Promise<ResumePick> {
  const available = stepsOf(list);
  const avail = available.length ? `available here: ${available.map((n) => `step-${n}`).join(', ')}` : `${shownPath(root, cwd)} holds no usable step checkpoint`;
  let dir: string;
  if (/^\d+$/.test(from)) {
    dir = join(root, `step-${Number(from)}`);
    if (!existsSync(dir)) throw new CheckpointError(dir, `--resume-from ${from}: no checkpoint step-${Number(from)}`, `Pass one that exists (${avail}), or a checkpoint folder`);
  } else {
    dir = resolve(cwd, from);
    if (!existsSync(dir)) throw new CheckpointError(dir, `--resume-from ${from}: no such folder`, `Pass a step number (${avail}) or a checkpoint folder such as ${shownPath(join(root, 'step-N'), cwd)}`);
    if (!existsSync(join(dir, STATE_FILE)) && (existsSync(join(dir, LATEST_FILE)) || existsSync(join(dir, 'checkpoints'))))
      throw new CheckpointError(dir, `--resume-from ${from}: this is a run or checkpoints folder, not one checkpoint`, `Pass a checkpoint folder inside it (e.g. ${shownPath(join(dir, existsSync(join(dir, LATEST_FILE)) ? '' : 'checkpoints', 'step-N'), cwd)}) or a step number`);
  }
  const state = await readCheckpointState(dir).catch((e: unknown) => {
    if (e instanceof NewerCheckpointError) throw e; // its fix is the update, not another checkpoint
    if (e instanceof CheckpointError) throw new CheckpointError(e.file, e.problem, `Pick another checkpoint with --resume-from (${avail})`);
    throw e;
  });
  const chosen: Entry = list.find((e) => resolve(e.dir) === resolve(dir)) ?? { name: dir, dir, step: state.step, kind: 'named', problem: null };
  const after = newerThan(list, { ...chosen, step: state.step });
  stopOnNewer(after, `--resume-from ${from} would move it aside, so it stops here`);
  const newer = after.map((e) => e.dir);
  return { dir, step: state.step, state, skipped: [], newer, latestMoves: newer.length > 0 };
}

