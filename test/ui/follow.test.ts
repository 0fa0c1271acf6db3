/**
 * dashboard.js follows a run folder (src/ui/saved-run.ts followRun), without a browser: records
 * appended later are published, a line still being written waits for its newline, a log cut back
 * by a resume (or replaced) is read again from the start, and the run's state is what its lock
 * and last step say: running while a live process holds `<dir>/lock`, finished / stopped after.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UiError } from '../../src/ui/errors.ts';
import { Hub } from '../../src/ui/hub.ts';
import { parseEventLine, type UiEvent } from '../../src/ui/protocol.ts';
import { followRun, lockState, runState, type FollowedRun } from '../../src/ui/saved-run.ts';
import { trainRecord } from '../support/train-record.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'diagnose', 'exp-router-std-1.0');

function trainLine(step: number): string {
  return JSON.stringify(trainRecord(step, { loss: 1 / step, lossMain: 1 / step, ms: 100 }));
}

function setup(steps: number): { cwd: string; dir: string; metrics: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'wmoe-follow-'));
  const dir = join(cwd, 'runs', 'r');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'header.json'), JSON.stringify({ config: { schedule: { steps } }, startStep: 0, startedAt: new Date().toISOString() }));
  return { cwd, dir, metrics: join(dir, 'metrics.jsonl') };
}

const lock = (dir: string, pid: number, host = hostname()) =>
  writeFileSync(join(dir, 'lock'), `${JSON.stringify({ pid, host, bootId: null, startedAt: new Date().toISOString(), command: 'node train.js' })}\n`);

function events(hub: Hub): UiEvent[] {
  return hub.since(0).map(parseEventLine);
}

const steps = (hub: Hub) => {
  // The steps the page holds now: records since the last reset.
  const evs = events(hub);
  const from = evs.map((e) => e.type).lastIndexOf('reset') + 1;
  return evs.slice(from).flatMap((e) => (e.type === 'record' && e.record.kind === 'train' ? [e.record.step] : []));
};
const lastStatus = (hub: Hub) =>
  events(hub)
    .filter((e): e is Extract<UiEvent, { type: 'status' }> => e.type === 'status')
    .at(-1);

let open: FollowedRun[] = [];
afterEach(() => {
  for (const f of open) f.close();
  open = [];
});

function follow(hub: Hub, arg: string, cwd: string, warnings: string[] = []): FollowedRun {
  const f = followRun(hub, arg, arg, { cwd, intervalMs: 0, warn: (l) => warnings.push(l) });
  open.push(f);
  return f;
}

describe('dashboard.js follows a run', () => {
  it('publishes appended records, waits for a cut line to be finished, and is running while a live process holds the lock', () => {
    const { cwd, dir, metrics } = setup(5);
    lock(dir, process.pid);
    writeFileSync(metrics, `${trainLine(1)}\n${trainLine(2)}\n${trainLine(3).slice(0, 40)}`);
    const hub = new Hub();
    const warnings: string[] = [];
    const f = follow(hub, 'runs/r', cwd, warnings);
    const run = events(hub)[0]!;
    expect(run).toMatchObject({ type: 'run', followed: true, live: false, dir: 'runs/r' });
    expect(steps(hub)).toEqual([1, 2]);
    expect(lastStatus(hub)?.status).toBe('running');
    // The rest of line 3 arrives, then line 4.
    appendFileSync(metrics, `${trainLine(3).slice(40)}\n${trainLine(4)}\n`);
    f.poll();
    expect(steps(hub)).toEqual([1, 2, 3, 4]);
    expect(warnings).toEqual([]);
    // The process is done: its lock goes, the last line is written before that.
    appendFileSync(metrics, `${trainLine(5)}\n`);
    rmSync(join(dir, 'lock'));
    f.poll();
    expect(steps(hub)).toEqual([1, 2, 3, 4, 5]);
    expect(lastStatus(hub)).toMatchObject({ status: 'done' });
    // No new status event while nothing changes.
    const n = hub.seq;
    f.poll();
    expect(hub.seq).toBe(n);
  });

  it('a stale lock or none before schedule.steps is "stopped", with how to continue', () => {
    const { cwd, dir, metrics } = setup(10);
    writeFileSync(metrics, `${trainLine(1)}\n${trainLine(2)}\n`);
    // A pid that has exited: the lock is stale.
    const child = spawn(process.execPath, ['-e', '0']);
    return new Promise<void>((resolve) =>
      child.on('exit', () => {
        lock(dir, child.pid!);
        expect(lockState(dir)).toMatchObject({ held: 'stale', pid: child.pid });
        const hub = new Hub();
        follow(hub, 'runs/r', cwd);
        const s = lastStatus(hub)!;
        expect(s.status).toBe('stopped');
        expect(s.message).toMatch(
          /stopped at step 2 of 10: no process is training it \(its lock names pid \d+, but that process is no longer running\); .*--resume/,
        );
        resolve();
      }),
    );
  });

  it('a log cut back by a resume is read again from the start (a reset), then followed', () => {
    const { cwd, dir, metrics } = setup(6);
    lock(dir, process.pid);
    const lines = [1, 2, 3, 4].map(trainLine);
    writeFileSync(metrics, `${lines.join('\n')}\n`);
    const hub = new Hub();
    const f = follow(hub, 'runs/r', cwd);
    expect(steps(hub)).toEqual([1, 2, 3, 4]);
    // --resume from step 2 truncates the steps after it and goes on.
    truncateSync(metrics, Buffer.byteLength(`${lines.slice(0, 2).join('\n')}\n`));
    appendFileSync(metrics, `${trainLine(3)}\n`);
    f.poll();
    expect(events(hub).some((e) => e.type === 'reset')).toBe(true);
    expect(steps(hub)).toEqual([1, 2, 3]);
    // Cut and grown past the old length before the next look: noticed by the bytes before the offset.
    const before = readFileSync(metrics, 'utf8');
    writeFileSync(
      metrics,
      `${trainLine(1)}\n${trainLine(2)}\n${JSON.stringify({ kind: 'valid', step: 2, loss: 0.5, lossMain: 0.5, horizons: [] })}\n${trainLine(3)}\n${trainLine(4)}\n`,
    );
    expect(readFileSync(metrics, 'utf8').length).toBeGreaterThan(before.length);
    f.poll();
    expect(steps(hub)).toEqual([1, 2, 3, 4]);
    // Replaced by a new file (--overwrite moved the run aside, a fresh one started).
    renameSync(metrics, join(dir, 'old.jsonl'));
    writeFileSync(metrics, `${trainLine(1)}\n`);
    f.poll();
    expect(steps(hub)).toEqual([1]);
  });

  it('a recorded run: every record published as the file has it, findings-ready header passed through, "finished"', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'wmoe-follow-'));
    const dir = join(cwd, 'r');
    mkdirSync(dir);
    // header.json as train.js writes it now, with the diagnosis's baseline and data statistics.
    const h = JSON.parse(readFileSync(join(FIXTURE, 'header.json'), 'utf8')) as Record<string, unknown>;
    const baseline = { kind: 'predict-window-mean', loss: 0.21, how: 'test' };
    writeFileSync(join(dir, 'header.json'), JSON.stringify({ ...h, baseline, data: { trainWindows: 100 } }));
    // The fixture drops z and gradNormPostClip; the logger writes them.
    const text = readFileSync(join(FIXTURE, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        return JSON.stringify(r.kind === 'train' ? { z: 0, gradNormPostClip: 1, ...r } : r);
      });
    writeFileSync(join(dir, 'metrics.jsonl'), `${text.join('\n')}\n`);
    const hub = new Hub();
    follow(hub, 'r', cwd);
    const header = events(hub).find((e) => e.type === 'header');
    expect(header?.type === 'header' && header.header).toMatchObject({ baseline, data: { trainWindows: 100 } });
    expect(events(hub).filter((e) => e.type === 'record').length).toBe(text.length);
    expect(lastStatus(hub)?.status).toBe('done');
  });

  it('a folder whose run has not logged yet is accepted while its lock is held, refused otherwise', () => {
    const { cwd, dir } = setup(5);
    expect(() => follow(new Hub(), 'runs/r', cwd)).toThrow(UiError);
    lock(dir, process.pid);
    const hub = new Hub();
    follow(hub, 'runs/r', cwd);
    expect(lastStatus(hub)?.status).toBe('running');
    expect(steps(hub)).toEqual([]);
  });

  it('a bad line at the start is bad input; one appended later is left out and named once', () => {
    const { cwd, dir, metrics } = setup(5);
    writeFileSync(metrics, `${trainLine(1)}\n{"kind":"train"}\n`);
    expect(() => follow(new Hub(), 'runs/r', cwd)).toThrow(/metrics\.jsonl:2: train record/);
    lock(dir, process.pid);
    writeFileSync(metrics, `${trainLine(1)}\n`);
    const hub = new Hub();
    const warnings: string[] = [];
    const f = follow(hub, 'runs/r', cwd, warnings);
    appendFileSync(metrics, `not json\n${trainLine(2)}\n`);
    f.poll();
    f.poll();
    expect(steps(hub)).toEqual([1, 2]);
    expect(warnings).toEqual([expect.stringMatching(/metrics\.jsonl:2: not valid JSON .*\(left out\)/)]);
  });

  it('runState: a lock on another host cannot be checked here and counts as running; no schedule.steps is "saved"', () => {
    expect(runState({ held: 'elsewhere', pid: 7, host: 'gpu-box' }, 3, 10, 'runs/r')).toMatchObject({
      status: 'running',
      message: expect.stringContaining('host gpu-box'),
    });
    expect(runState({ held: 'none' }, 3, null, 'runs/r')).toEqual({ status: 'saved' });
    expect(runState({ held: 'none' }, 10, 10, 'runs/r')).toEqual({ status: 'done' });
  });
});
