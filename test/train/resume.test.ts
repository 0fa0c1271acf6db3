/**
 * Which checkpoint a resume continues from (issue 14, item 7), through the CLI: --resume names
 * every newer checkpoint it skipped and why (no silent fallback), --resume-from <step | dir>
 * continues from the one asked for and moves the newer ones aside, and a damaged checkpoint's
 * error names the flag and the checkpoints there are.
 */
import { describe, it, expect } from 'vitest';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, scratch, tinyConfig, writeConfig, trainMetrics, finishedRun, tinyRun } from './cli-helpers.ts';

const done = finishedRun(); // step-3 and step-6

/** A copy of the finished run to damage. */
function copyRun(): { d: string; p: string } {
  const d = scratch();
  cpSync(join(done.dir, 'runs'), join(d, 'runs'), { recursive: true });
  return { d, p: writeConfig(d, tinyConfig()) };
}

describe('--resume says what it skipped', () => {
  it('state.json deleted from the latest checkpoint: names it, continues from step 3, moves it aside, and ends exactly', async () => {
    const { d, p } = copyRun();
    rmSync(join(d, 'runs/t/checkpoints/step-6/state.json'));
    const r = await runCli(d, ['--config', p, '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('[resume] skipped step-6: latest names it, but it has no state.json (incomplete, or the file was deleted)');
    expect(r.stderr).toMatch(/checkpoints after step 3 moved to (runs\/t\/set-aside\/\S+-after-step-3) \(not deleted\), with the metrics lines of those steps/);
    expect(r.stderr).toMatch(/runs\/t\/checkpoints\/step-3: continuing after step 3/);
    const aside = r.stderr.match(/moved to (\S+) \(not deleted\)/)![1]!;
    expect(existsSync(join(d, aside, 'checkpoints/step-6/model.safetensors'))).toBe(true);
    expect(readFileSync(join(d, aside, 'metrics-after-step.jsonl'), 'utf8')).toMatch(/"kind":"train","step":6/);
    expect(trainMetrics(d)).toEqual(done.metrics);
    expect(readFileSync(join(d, 'runs/t/checkpoints/latest'), 'utf8').trim()).toBe('step-6');
  });

  it('latest pointing at a missing step: names it and the step it continues from', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p, '--stop-after', '3'])).status).toBe(0);
    writeFileSync(join(d, 'runs/t/checkpoints/latest'), 'step-9\n');
    const r = await runCli(d, ['--config', p, '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('[resume] skipped step-9: latest names it, but the folder does not exist');
    expect(r.stderr).toMatch(/continuing after step 3/);
    expect(trainMetrics(d)).toEqual(done.metrics);
  });

  it('no usable checkpoint at all: exit 2, each one with its problem', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p, '--stop-after', '3'])).status).toBe(0);
    writeFileSync(join(d, 'runs/t/checkpoints/step-3/state.json'), '{ "format": ');
    const r = await runCli(d, ['--config', p, '--resume']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--resume: no usable checkpoint here \(step-3: latest names it, but it has state\.json not valid JSON/);
    expect(r.stderr).toMatch(/Fix or restore one of them, or start again without --resume/);
  });

  it('a damaged checkpoint: the error names the file and the checkpoints to resume from instead', async () => {
    const { d, p } = copyRun();
    const f = join(d, 'runs/t/checkpoints/step-6/model.safetensors');
    const bytes = readFileSync(f);
    bytes[bytes.length - 5]! ^= 0x10;
    writeFileSync(f, bytes);
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'schedule.steps=8']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: ${f}: contents do not match the SHA-256 recorded in state.json`);
    expect(r.stderr).toMatch(/load an older checkpoint \(train\.js --resume-from <step>\); checkpoints here: step-3, step-6/);
  });
});

describe('--resume-from', () => {
  it('a step number: continues from it, moves the newer checkpoints (and their metrics) aside, ends exactly', async () => {
    const { d, p } = copyRun();
    const r = await runCli(d, ['--config', p, '--resume-from', '3']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/continuing after step 3/);
    const aside = r.stderr.match(/checkpoints after step 3 moved to (\S+) \(not deleted\)/)![1]!;
    expect(readdirSync(join(d, aside, 'checkpoints'))).toEqual(['step-6']);
    expect(trainMetrics(d)).toEqual(done.metrics);
  });

  it('a checkpoint folder, into another run folder: continues from it there', async () => {
    const d = scratch();
    const p = writeConfig(d, tinyConfig({ logging: { dir: 'runs/u', validEvery: 0, validBatches: 2, progress: 'plain' } }));
    const src = join(done.dir, 'runs/t/checkpoints/step-3');
    const r = await runCli(d, ['--config', p, '--resume-from', src]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`${src}: continuing after step 3`);
    expect(trainMetrics(d, 'runs/u')).toEqual(done.metrics.slice(3));
  });

  it('a step that does not exist, a run folder, a missing path: exit 2 with what is there', async () => {
    const { d, p } = copyRun();
    const missing = await runCli(d, ['--config', p, '--resume-from', '5']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--resume-from 5: no checkpoint step-5\. Pass one that exists \(available here: step-3, step-6\)/);
    const runDir = await runCli(d, ['--config', p, '--resume-from', 'runs/t']);
    expect(runDir.status).toBe(2);
    expect(runDir.stderr).toMatch(
      /this is a run or checkpoints folder, not one checkpoint\. Pass a checkpoint folder inside it \(e\.g\. runs\/t\/checkpoints\/step-N\)/,
    );
    const nowhere = await runCli(d, ['--config', p, '--resume-from', 'nowhere/step-3']);
    expect(nowhere.status).toBe(2);
    expect(nowhere.stderr).toMatch(/--resume-from nowhere\/step-3: no such folder/);
  });

  it('--resume of a finished run does nothing and says how to train longer', async () => {
    const { d, p } = copyRun();
    const r = await runCli(d, ['--config', p, '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /done: the run had already finished \(step 6, schedule\.steps 6\); nothing was trained\. To train longer, raise schedule\.steps \(e\.g\. --set schedule\.steps=12\) and --resume/,
    );
  });
});
