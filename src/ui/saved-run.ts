/**
 * A finished (or stopped) run folder for `dashboard.js`: metrics.jsonl (required), header.json
 * (written by train.js since the dashboard exists) and plan.txt (older runs), each checked with
 * the same schemas as the live path; a problem is a UiError naming the file and the fix.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { UiError } from './errors.ts';
import { parseHeader } from './header.ts';
import type { Hub } from './hub.ts';
import type { UiHeader } from './protocol.ts';

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
      throw new UiError(`${path}: not valid JSON (${(e as Error).message}). train.js writes it at the start of a run; delete it to show the run without its header`);
    }
    const r = parseHeader(raw);
    if ('error' in r) throw new UiError(`${path}: ${r.error}. train.js writes it at the start of a run; delete it to show the run without its header`);
    return r.header;
  }
  const plan = join(dir, 'plan.txt');
  return existsSync(plan) ? { plan: readFileSync(plan, 'utf8') } : null;
}

/** Load the run at `arg` (a run folder or its metrics.jsonl) into the hub as a saved run. */
export function loadRun(hub: Hub, arg: string, label: string, cwd = process.cwd()): void {
  const path = resolve(cwd, arg);
  if (!existsSync(path)) throw new UiError(`${arg}: no such folder. Give a run folder train.js wrote (its logging.dir, e.g. runs/small-moe), which holds metrics.jsonl`);
  const isFile = statSync(path).isFile();
  const dir = isFile ? dirname(path) : path;
  const metrics = isFile ? path : join(dir, 'metrics.jsonl');
  if (isFile && !basename(path).endsWith('.jsonl')) throw new UiError(`${arg}: not a run folder or a metrics .jsonl file`);
  if (!existsSync(metrics)) {
    const below = runsBelow(dir, cwd);
    const hint = below.length ? `; run folders below it: ${below.join(', ')}` : '; train into it first with node train.js --config <file> (logging.dir names the folder)';
    throw new UiError(`${arg}: no metrics.jsonl in this folder, so it is not a run folder${hint}`);
  }
  const text = readFileSync(metrics, 'utf8');
  const lines = text.split('\n');
  if (!lines.some((l) => l.trim())) throw new UiError(`${metrics}: empty, the run has not logged anything yet (watch a run live with node train.js --config <file> --ui)`);
  const run = hub.addRun(label, relative(cwd, dir) || '.', false);
  const header = readHeader(dir);
  if (header) hub.header(run, header);
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      // A run killed mid-write leaves a cut last line (no newline after it): the rest is good.
      if (i === lines.length - 1 && !text.endsWith('\n')) return console.error(`[dashboard] ${metrics}:${i + 1}: a cut last line (the run was stopped mid-write), left out`);
      throw new UiError(`${metrics}:${i + 1}: not valid JSON (${(e as Error).message}); fix or delete that line`);
    }
    const problem = hub.record(run, raw);
    if (problem) throw new UiError(`${metrics}:${i + 1}: ${problem}`);
  });
  hub.status(run, 'saved');
}
