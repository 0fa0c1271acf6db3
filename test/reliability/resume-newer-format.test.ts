/**
 * A checkpoint in a newer format than this build reads, through the real CLI. Before, --resume
 * counted it as unusable, continued from an older step and moved it aside. Now every resume stops
 * (exit 2) naming the format version it found (the "version" field of state.json), the one this
 * build reads and that a newer webgpu-moe reads it; nothing is moved. docs/RELIABILITY.md "Resume".
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_VERSION } from '../../src/train/persist/checkpoint.ts';
import { runCli, scratch, tinyConfig, writeConfig, snapshot } from '../train/cli-helpers.ts';

let done: string; // a finished run: step-3 and step-6
beforeAll(async () => {
  done = scratch();
  const r = await runCli(done, ['--config', writeConfig(done, tinyConfig())]);
  expect(r.status, r.stderr).toBe(0);
});

/** A copy of the finished run whose step-6 was written by a newer format. */
function newerRun(): { d: string; p: string; state: string } {
  const d = scratch();
  cpSync(join(done, 'runs'), join(d, 'runs'), { recursive: true });
  const state = join(d, 'runs/t/checkpoints/step-6/state.json');
  const s = JSON.parse(readFileSync(state, 'utf8')) as Record<string, unknown>;
  writeFileSync(state, JSON.stringify({ ...s, version: CHECKPOINT_VERSION + 1 }, null, 2));
  return { d, p: writeConfig(d, tinyConfig()), state };
}

const VERSION = new RegExp(
  `checkpoint format version ${CHECKPOINT_VERSION + 1} \\(the "version" field of state\\.json\\); this webgpu-moe reads format version ${CHECKPOINT_VERSION}\\. .*A newer webgpu-moe wrote it, and reads it: update this copy of webgpu-moe \\(git pull, npm install\\) to use it\\. Nothing was moved or changed`,
);

describe('a checkpoint in a newer format', () => {
  it('--resume stops on it: exit 2, the versions named, nothing moved aside', async () => {
    const { d, p, state } = newerRun();
    const before = snapshot(join(d, 'runs/t'));
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'schedule.steps=9']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: ${state}: `);
    expect(r.stderr).toMatch(VERSION);
    expect(r.stderr).toMatch(/Skipping it would continue from an older step and move it aside, so --resume stops here/);
    expect(r.stderr).not.toMatch(/continuing after|set-aside|^\s+at /m);
    expect(snapshot(join(d, 'runs/t'))).toEqual(before);
  });

  it('--resume-from an older step would move it aside: stops too; --resume-from it: stops', async () => {
    const { d, p } = newerRun();
    const before = snapshot(join(d, 'runs/t'));
    const older = await runCli(d, ['--config', p, '--resume-from', '3']);
    expect(older.status, older.stderr).toBe(2);
    expect(older.stderr).toMatch(VERSION);
    expect(older.stderr).toMatch(/--resume-from 3 would move it aside, so it stops here/);
    const itself = await runCli(d, ['--config', p, '--resume-from', '6']);
    expect(itself.status, itself.stderr).toBe(2);
    expect(itself.stderr).toMatch(VERSION);
    expect(itself.stderr).not.toMatch(/Pick another checkpoint/);
    expect(snapshot(join(d, 'runs/t'))).toEqual(before);
  });

  it('an older format still reads as before: skipped, with its reason', async () => {
    const d = scratch();
    cpSync(join(done, 'runs'), join(d, 'runs'), { recursive: true });
    const state = join(d, 'runs/t/checkpoints/step-6/state.json');
    writeFileSync(state, JSON.stringify({ ...(JSON.parse(readFileSync(state, 'utf8')) as object), version: 0 }));
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--resume', '--set', 'schedule.steps=7']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /\[resume\] skipped step-6: latest names it, but it has state\.json checkpoint format version 0 \(the "version" field of state\.json\); this webgpu-moe reads format version 1/,
    );
  });
});
