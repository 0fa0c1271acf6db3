/**
 * The run explains itself, through the CLI a user types: the first report's case (a 280-class head
 * initialised with std 1.0) prints the head-init finding with its numbers and fix once, while it
 * trains; findings.json holds it; the end of the run summarises it; `node diagnose.js` on the saved
 * run says the same. The same run with the default head std gets none of those findings.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, scratch } from '../train/cli-helpers.ts';
import { spawnAsync } from '../support/spawn.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
const DIAGNOSE_JS = join(REPO, 'diagnose.js');

async function classifierRun(headStd: number): Promise<{ cwd: string; stderr: string; stdout: string; status: number | null }> {
  const cwd = scratch();
  const sets = [
    `model.init.headStd=${headStd}`,
    'schedule.steps=6',
    'schedule.warmupSteps=2',
    'logging.validBatches=2',
    'logging.dir=runs/c',
    'logging.progress=plain',
    'checkpoint.every=0',
  ];
  const r = await runCli(cwd, ['--config', join(REPO, 'small-moe-classifier.json'), ...sets.flatMap((s) => ['--set', s])]);
  return { cwd, ...r };
}

describe('findings in a training run', () => {
  it('head std 1.0 on 280 classes: the finding names the head init, its numbers and the fix; diagnose.js agrees', async () => {
    const r = await classifierRun(1.0);
    expect(r.status, r.stderr).toBe(0);
    // Printed once when first detected (before training: the first validation), with its numbers.
    const blocks = r.stderr.split('\n').filter((l) => l.startsWith('[diagnose] ERROR  Initial loss far above ln C'));
    expect(blocks).toHaveLength(1);
    expect(r.stderr).toMatch(/validation cross-entropy before training: 1\d\.\d+, \d\.\d+x the no-information baseline 5\.635 \(ln 280/);
    expect(r.stderr).toContain('model.init.headStd');
    expect(r.stderr).toContain('fix: --set model.init.headStd=0.02');
    // Clipping: the pre-clip norm and the fraction removed at step 1.
    expect(r.stderr).toMatch(/\[diagnose\] ERROR {2}Clipping removes most of every update/);
    expect(r.stderr).toMatch(/step 1: pre-clip gradient norm \d{3}(\.\d+)?, clipping to 1 removed 99\.\d% of it/);
    // The summary at the end, before the last line.
    expect(r.stderr).toMatch(/\[diagnose\] summary: 2 findings \(2 errors, 0 warnings\)/);
    // The run folder keeps them.
    const saved = JSON.parse(readFileSync(join(r.cwd, 'runs/c/findings.json'), 'utf8')) as { findings: { kind: string; fix: { sets: string[] } }[] };
    expect(saved.findings.map((f) => f.kind).sort()).toEqual(['bad-start', 'clip-limited']);
    expect(saved.findings.every((f) => f.fix.sets.includes('model.init.headStd=0.02'))).toBe(true);
    // diagnose.js on the saved run: the same findings (exit 1: error-severity findings).
    const d = await spawnAsync(process.execPath, [DIAGNOSE_JS, 'runs/c', '--json'], {
      cwd: r.cwd,
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
    });
    expect(d.status, d.stderr).toBe(1);
    const findings = (JSON.parse(d.stdout) as { findings: { kind: string }[] }[])[0]!.findings;
    expect(findings.map((f) => f.kind).sort()).toEqual(['bad-start', 'clip-limited']);
  }, 300_000);

  it('the default head std: no bad-start and no clipping finding', async () => {
    const r = await classifierRun(0.02);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('Initial loss far above');
    expect(r.stderr).not.toContain('Clipping removes most');
    const saved = readFileSync(join(r.cwd, 'runs/c/header.json'), 'utf8');
    expect(JSON.parse(saved)).toMatchObject({ baseline: { kind: 'uniform-classes' } });
  }, 300_000);
});
