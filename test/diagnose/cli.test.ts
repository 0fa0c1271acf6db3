/** `node diagnose.js`: exit codes, console and JSON output, runs in progress and bad input. */
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/diagnose/cli.ts';
import { FIXTURES } from './helpers.ts';
import { spawnAsync } from '../support/spawn.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const fx = (name: string) => join(FIXTURES, name);

function scratchCopy(name: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'diagnose-')), name);
  cpSync(fx(name), dir, { recursive: true });
  return dir;
}

describe('diagnose.js', () => {
  it('a healthy run: exit 0, "no findings"', async () => {
    const r = await run(fx('default-small-moe'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^== .*default-small-moe\ndiagnosis: no findings over steps 1-300 \(4 validations\)/);
    expect(r.err).toBe('');
  });

  it('error findings: exit 1 (CI fails); --fail-on never: 0; warnings alone: 0 unless --fail-on warning', async () => {
    const bad = await run(fx('classify-head-std-1.0'));
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/\[diagnose\] ERROR  Initial loss far above ln C/);
    expect(bad.out).toMatch(/fix: --set model\.init\.headStd=0\.02/);
    expect(bad.out).toMatch(/reproduce: npm run experiment -- head-init/);
    expect((await run(fx('classify-head-std-1.0'), '--fail-on', 'never')).code).toBe(0);
    expect((await run(fx('exp-aux-strong'))).code).toBe(0);
    expect((await run(fx('exp-aux-strong'), '--fail-on', 'warning')).code).toBe(1);
    expect((await run(fx('exp-aux-strong'), '--fail-on', 'sometimes')).code).toBe(2);
  });

  it('--json: one array, an entry per run', async () => {
    const r = await run(fx('classify-head-std-1.0'), fx('default-small-moe'), '--json');
    expect(r.code).toBe(1);
    const docs = JSON.parse(r.out) as { run: string; findings: { id: string; fix: { sets: string[] }; experiment: string }[]; steps: object }[];
    expect(docs.map((d) => d.findings.map((f) => f.id))).toEqual([['bad-start', 'clip-limited'], []]);
    expect(docs[0]!.findings[0]!.fix.sets).toEqual(['model.init.headStd=0.02']);
    expect(docs[1]!.steps).toEqual({ first: 1, last: 300, train: 300, valid: 4 });
  });

  it('a run in progress: a cut last line is left out, and the header says how far it got', async () => {
    const dir = scratchCopy('classify-head-std-1.0');
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean);
    writeFileSync(join(dir, 'metrics.jsonl'), `${lines.slice(0, 8).join('\n')}\n${lines[8]!.slice(0, 40)}`);
    const r = await run(dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\(in progress or stopped: 7 of 20 steps\)/);
    expect(r.out).toMatch(/Clipping removes most of every update {2}\(steps 1-7, ongoing\)/);
    const j = JSON.parse((await run(dir, '--json')).out) as { partialLastLine?: boolean }[];
    expect(j[0]!.partialLastLine).toBe(true);
  });

  it('a metrics .jsonl file alone (no header): config defaults', async () => {
    const r = await run(join(fx('exp-nan-naive-logger-view'), 'metrics.jsonl'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\(no header\.json: config defaults assumed\)/);
    expect(r.out).toMatch(/Loss logged as 0 next to a NaN gradient norm/);
  });

  it('bad input: exit 2 with the problem and the fix; other runs are still diagnosed', async () => {
    const missing = await run('/nonexistent/run');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^error: \/nonexistent\/run: no such folder\. Give a run folder train\.js wrote/);
    const empty = mkdtempSync(join(tmpdir(), 'diagnose-'));
    expect((await run(empty)).err).toMatch(/no metrics\.jsonl here, so it is not a run folder/);
    const notJsonl = join(empty, 'notes.txt');
    writeFileSync(notJsonl, 'x');
    expect((await run(notJsonl)).err).toMatch(/not a run folder or a metrics \.jsonl file/);
    writeFileSync(join(empty, 'metrics.jsonl'), '');
    expect((await run(empty)).err).toMatch(/no train or validation records yet/);
    const broken = scratchCopy('exp-aux-strong');
    const text = readFileSync(join(broken, 'metrics.jsonl'), 'utf8').split('\n');
    text[3] = '{"kind":"train",';
    writeFileSync(join(broken, 'metrics.jsonl'), text.join('\n'));
    const b = await run(broken, fx('default-small-moe'));
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/metrics\.jsonl:4: not valid JSON .*; fix or delete that line/);
    expect(b.out).toMatch(/default-small-moe\ndiagnosis: no findings/);
    const badHeader = scratchCopy('exp-aux-warmed');
    writeFileSync(join(badHeader, 'header.json'), '{"config":');
    expect((await run(badHeader)).err).toMatch(/header\.json: not valid JSON .*delete it to diagnose without the run's config/);
    expect((await run('--no-such-flag', fx('default-small-moe'))).code).toBe(2);
  });

  it('the entry point: node diagnose.js (tsx registered), exit code through the process', async () => {
    const r = await spawnAsync(process.execPath, ['diagnose.js', fx('exp-head-std-1.0')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/\[diagnose\] ERROR  Initial loss far above ln C/);
    const live = mkdtempSync(join(tmpdir(), 'diagnose-'));
    mkdirSync(join(live, 'run'));
    appendFileSync(join(live, 'run', 'metrics.jsonl'), '{"kind":"valid","step":0,"loss":0.5,"lossMain":0.5,"horizons":[]}\n');
    const v = await spawnAsync(process.execPath, ['diagnose.js', join(live, 'run')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/no findings over no train steps/);
  });
});
