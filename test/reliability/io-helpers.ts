/**
 * Shared by the test/reliability/io-*.test.ts files: a run folder made from the fixture checkpoint
 * (no training needed: test/fixtures/hf/finetuned, a real checkpoint train.js wrote), the commands
 * run as a user runs them (a child process), and a byte-level snapshot of a folder to prove that
 * nothing saved was lost or changed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { scratch } from '../train/cli-helpers.ts';
import type { Ran } from '../support/spawn.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const FIX = join(ROOT, 'test', 'fixtures', 'hf');

/** forecast.js flags for the fixture series (context 12, 4 points ahead). */
export const FC_ARGS = ['--data', 'series.csv', '--context', '12', '--horizon', '4'];

/**
 * A scratch folder holding the fixture files (series.csv, finetune.json, tiny-f32, finetuned) and
 * a run runs/t as train.js leaves one: checkpoints/step-1 and step-2 (latest), metrics.jsonl,
 * plan.txt, header.json.
 */
export function fixtureRun(): string {
  const d = scratch();
  cpSync(FIX, d, { recursive: true });
  const ck = join(d, 'runs/t/checkpoints');
  mkdirSync(ck, { recursive: true });
  cpSync(join(FIX, 'finetuned'), join(ck, 'step-1'), { recursive: true });
  cpSync(join(FIX, 'finetuned'), join(ck, 'step-2'), { recursive: true });
  writeFileSync(join(ck, 'latest'), 'step-2\n');
  writeFileSync(join(d, 'runs/t/metrics.jsonl'), '{"kind":"train","step":1,"loss":0.5}\n{"kind":"train","step":2,"loss":0.4}\n');
  writeFileSync(join(d, 'runs/t/plan.txt'), 'plan\n');
  writeFileSync(join(d, 'runs/t/header.json'), '{}\n');
  return d;
}

/** Every file and folder under `dir` (relative path -> sha256, or "dir"/"link"). */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    for (const name of readdirSync(p).sort()) {
      const full = join(p, name);
      const r = rel ? `${rel}/${name}` : name;
      const s = lstatSync(full);
      if (s.isSymbolicLink()) out[r] = 'link';
      else if (s.isDirectory()) {
        out[r] = 'dir';
        walk(full, r);
      } else out[r] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out;
}

/** No stack trace ("    at f (file:1:2)") anywhere in the output. */
export function expectNoStack(r: Ran): void {
  expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
}

/** Temp or moved-aside leftovers (`.tmp-<pid>-`, `.old-<pid>-`) under `dir`. */
export function leftovers(dir: string): string[] {
  return Object.keys(snapshot(dir)).filter((p) => /\.(tmp|old)-\d+-[0-9a-f]+/.test(p));
}

/**
 * Change model.safetensors of checkpoint `dir` with `edit(floats of the first tensor's data)` and
 * record the new SHA-256 in state.json, so the checkpoint is valid but holds these weights.
 */
export function editWeights(dir: string, edit: (data: Float32Array) => void): void {
  const file = join(dir, 'model.safetensors');
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const first = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])[0]![1];
  const [b, e] = first.data_offsets;
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + n + b, bytes.byteOffset + 8 + n + e));
  edit(data);
  Buffer.from(data.buffer).copy(bytes, 8 + n + b);
  writeFileSync(file, bytes);
  const statePath = join(dir, 'state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { files: { model: { sha256: string; bytes: number } } };
  state.files.model.sha256 = createHash('sha256').update(bytes).digest('hex');
  state.files.model.bytes = bytes.length;
  writeFileSync(statePath, JSON.stringify(state, null, 2));
}

/** Flip one byte in the middle of `file` (its recorded SHA-256 no longer matches). */
export function flipByte(file: string): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - 5]! ^= 0x10;
  writeFileSync(file, bytes);
}

/** Root can mount; elsewhere the tests that need a mount are skipped (the injected ones still run). */
export function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = scratch();
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
  if (r.status !== 0) return false;
  spawnSync('umount', [dir]);
  return true;
}

/** A tmpfs of `bytes` at a new folder, read-only when asked; unmount() when done. */
export function mountTmpfs(bytes: number, opts: { readOnly?: boolean; prepare?: (dir: string) => void } = {}): { dir: string; unmount: () => void } {
  const dir = scratch();
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  if (m.status !== 0) throw new Error(`mount failed: ${m.stderr}`);
  opts.prepare?.(dir);
  if (opts.readOnly) {
    const r = spawnSync('mount', ['-o', 'remount,ro', dir]);
    if (r.status !== 0) throw new Error(`remount ro failed: ${r.stderr}`);
  }
  return { dir, unmount: () => void spawnSync('umount', [dir]) };
}
