/**
 * Which checkpoint a resume continues from, and what it passes over. `--resume` takes the one
 * `latest` names; when that one is unusable it falls back to the newest complete `step-N`, and
 * says so: every newer checkpoint it did not use is listed with the reason. `--resume-from <step |
 * dir>` names one. Either way this run's checkpoints newer than the chosen step are returned in
 * `newer`: commit.ts moves them aside (not deleting them), so the folder never mixes two histories.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CheckpointError,
  DIVERGED_RE,
  LATEST_FILE,
  NewerCheckpointError,
  OLD_RE,
  STATE_FILE,
  STEP_RE,
  TMP_RE,
  readCheckpointState,
  readLatestName,
  type CheckpointState,
} from '../persist/checkpoint.ts';
import { ConfigError, TrainConfigSchema, closestKey, describe, resumeClass, schemaPaths, underKey, type TrainConfig } from '../config.ts';
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
    return {
      name,
      dir,
      step: m ? Number(m[1]) : null,
      kind: 'unfinished',
      problem: `an unfinished save (temp folder of pid ${tmp[1]}; the next save removes it)`,
    };
  }
  const kind: Entry['kind'] = OLD_RE.test(name) ? 'old-copy' : STEP_RE.test(name) ? 'step' : DIVERGED_RE.test(name) ? 'diverged' : 'named';
  const fromName = STEP_RE.exec(name) ?? DIVERGED_RE.exec(name) ?? STEP_RE.exec(OLD_RE.exec(name)?.[1] ?? '');
  try {
    const state = await readCheckpointState(dir);
    return { name, dir, step: state.step, kind, problem: null, state };
  } catch (e) {
    if (e instanceof NewerCheckpointError) return { name, dir, step: fromName ? Number(fromName[1]) : null, kind, problem: e.problem, newer: e };
    const problem =
      e instanceof CheckpointError
        ? existsSync(join(dir, STATE_FILE))
          ? `${STATE_FILE} ${e.problem}`
          : `no ${STATE_FILE} (incomplete, or the file was deleted)`
        : String(e);
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
  if (e.kind === 'diverged')
    return `saved after the validation loss diverged, so it is not marked latest (to continue from it anyway: --resume-from ${shownPath(e.dir, cwd)})`;
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
  const others =
    newer.length > 1
      ? `; so are ${newer
          .slice(1)
          .map((e) => e.name)
          .join(', ')}`
      : '';
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
  if (!chosen && list.length === 0 && skipped.length === 0)
    throw new CheckpointError(root, '--resume: no checkpoint under this folder (nothing was saved yet)', 'Train without --resume first');
  if (!chosen) {
    const rest = list.filter((e) => !skipped.some((k) => k.name === e.name));
    const found = rest.length
      ? rest.map((e) => `${e.name}: ${e.problem ?? (e.kind === 'diverged' ? 'saved after the run diverged' : 'not a step checkpoint')}`).join('; ')
      : 'nothing';
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
  const avail = available.length
    ? `available here: ${available.map((n) => `step-${n}`).join(', ')}`
    : `${shownPath(root, cwd)} holds no usable step checkpoint`;
  let dir: string;
  if (/^\d+$/.test(from)) {
    dir = join(root, `step-${Number(from)}`);
    if (!existsSync(dir))
      throw new CheckpointError(dir, `--resume-from ${from}: no checkpoint step-${Number(from)}`, `Pass one that exists (${avail}), or a checkpoint folder`);
  } else {
    dir = resolve(cwd, from);
    if (!existsSync(dir))
      throw new CheckpointError(
        dir,
        `--resume-from ${from}: no such folder`,
        `Pass a step number (${avail}) or a checkpoint folder such as ${shownPath(join(root, 'step-N'), cwd)}`,
      );
    if (!existsSync(join(dir, STATE_FILE)) && (existsSync(join(dir, LATEST_FILE)) || existsSync(join(dir, 'checkpoints'))))
      throw new CheckpointError(
        dir,
        `--resume-from ${from}: this is a run or checkpoints folder, not one checkpoint`,
        `Pass a checkpoint folder inside it (e.g. ${shownPath(join(dir, existsSync(join(dir, LATEST_FILE)) ? '' : 'checkpoints', 'step-N'), cwd)}) or a step number`,
      );
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

/** One key whose value differs between a checkpoint's config and this run's. */
export interface ConfigChange {
  key: string;
  saved: unknown;
  now: unknown;
  kind: 'free' | 'noted' | 'locked';
}

/** Leaves of a JSON object by dotted path (arrays are values). */
function leaves(v: unknown, path: string, out: Map<string, unknown>): Map<string, unknown> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) leaves(x, path ? `${path}.${k}` : k, out);
  else if (path && v !== undefined) out.set(path, v);
  return out;
}

/**
 * Every key whose value differs between the config a checkpoint was saved with and this run's,
 * in this run's key order. The saved config is read through today's schema first, so a key added
 * since (with its default) is not a change.
 */
export function configChanges(saved: Record<string, unknown>, now: TrainConfig): ConfigChange[] {
  const reread = TrainConfigSchema.safeParse(saved);
  const a = leaves(JSON.parse(JSON.stringify(reread.success ? reread.data : saved)), '', new Map());
  const b = leaves(JSON.parse(JSON.stringify(now)), '', new Map());
  const keys = [...new Set([...b.keys(), ...a.keys()])];
  return keys
    .filter((k) => JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k)))
    .map((key) => ({ key, saved: a.get(key), now: b.get(key), kind: resumeClass(key) }));
}

const shownValue = (v: unknown): string => (v === undefined ? '(unset)' : describe(v));

/** What a change means beyond its values, where that is not obvious. */
function consequence(c: ConfigChange): string {
  if (c.key === 'precision.activations')
    return c.now === 'f16' ? ' (the f16 loss scale starts at precision.initialScale)' : ' (the saved f16 loss scale is dropped)';
  if (c.key === 'schedule.microBatch' || c.key === 'schedule.accumulation') return ' (the batch of every step changes)';
  return '';
}
const line = (c: ConfigChange): string => `${c.key}: ${shownValue(c.saved)} → ${shownValue(c.now)}${consequence(c)}`;

/**
 * Check a resume's config against the checkpoint's (docs/CONFIG.md "Resuming with a changed
 * config"): a change to what the run computes is refused with every difference listed, unless
 * `allow` (--allow-config-change: true for every key, or keys and sections) covers it. Returns
 * the lines to print: the allowed changes and the schedule changes, each with its values.
 */
export function checkConfigChanges(
  state: CheckpointState,
  cfg: TrainConfig,
  allow: true | readonly string[] | undefined,
  ctx: { dir: string; flag: string; cwd: string },
): string[] {
  const shown = shownPath(ctx.dir, ctx.cwd);
  if (Array.isArray(allow)) {
    const known = schemaPaths();
    for (const k of allow) {
      if (known.includes(k)) continue;
      const near = closestKey(k, known);
      throw new ConfigError(
        `--allow-config-change ${allow.join(',')}: "${k}" is not a config key${near ? ` (did you mean ${near.key}?)` : ''}. Name keys or sections of docs/CONFIG.md, comma-separated (e.g. --allow-config-change data.source.seed,optim.weightDecay), or pass the flag alone to allow every change`,
      );
    }
  }
  if (Object.keys(state.config).length === 0) return [`[resume] ${shown} holds no config (state.json "config" is empty): it cannot be compared with this one`];
  const changes = configChanges(state.config, cfg);
  const allowed = (c: ConfigChange) => allow === true || (allow ?? []).some((k) => underKey(c.key, k));
  const refused = changes.filter((c) => c.kind === 'locked' && !allowed(c));
  const noted = changes.filter((c) => c.kind === 'noted');
  if (refused.length) {
    const rest = changes.filter((c) => c.kind !== 'locked' || allowed(c));
    const keys = refused.map((c) => c.key).join(',');
    throw new ConfigError(
      `${ctx.flag}: this config differs from the one ${shown} was trained with, in what the run computes:\n  ${refused.map(line).join('\n  ')}` +
        (rest.length ? `\nalso changed (allowed on a resume):\n  ${rest.map(line).join('\n  ')}` : '') +
        `\nContinuing would join two different runs into one. Undo the change to continue this run, or train this config as a new run in its own folder (--set logging.dir=...); to continue anyway, pass --allow-config-change ${keys} (or --allow-config-change alone for every key). Nothing was changed`,
    );
  }
  const out: string[] = [];
  for (const c of changes.filter((x) => x.kind === 'locked')) out.push(`[resume] config change allowed by --allow-config-change: ${line(c)}`);
  for (const c of noted) out.push(`[resume] config changed since ${shown}: ${line(c)}; it applies from step ${state.step + 1} on`);
  if (Array.isArray(allow))
    for (const k of allow)
      if (!changes.some((c) => c.kind === 'locked' && underKey(c.key, k)))
        out.push(`[resume] --allow-config-change ${k}: nothing under ${k} changed that needed it`);
  return out;
}
