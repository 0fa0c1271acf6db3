/**
 * `--resume` compares the config a checkpoint was trained with against the new one, through the
 * real CLI. Before, it compared the training window count only, so a resume on another data set
 * with as many windows (or in f16 after f32, dropping the loss scale) went ahead silently. Now a
 * change to what the run computes is refused (exit 2, every difference listed, nothing touched)
 * unless --allow-config-change names it; schedule changes go ahead with a note; the rest
 * (logging, checkpoints, device, ...) silently. docs/CONFIG.md "Resuming with a changed config".
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESUME_FREE, RESUME_NOTED, parseConfig, resumeClass } from '../../src/train/config.ts';
import { configChanges } from '../../src/train/run/resume.ts';
import { readMetrics, runCli, scratch, tinyConfig, writeConfig, type CliResult, snapshot, expectRefused, setArgs } from '../train/cli-helpers.ts';

let stopped: string; // a run stopped after step 3 of 6
beforeAll(async () => {
  stopped = scratch();
  const r = await runCli(stopped, ['--config', writeConfig(stopped, tinyConfig()), '--stop-after', '3']);
  expect(r.status, r.stderr).toBe(0);
});

function copyRun(): { d: string; p: string; before: Map<string, string> } {
  const d = scratch();
  cpSync(join(stopped, 'runs'), join(d, 'runs'), { recursive: true });
  return { d, p: writeConfig(d, tinyConfig()), before: snapshot(join(d, 'runs/t')) };
}

/** Exit 2, the message, no stack trace, the run folder byte for byte as it was (no lock left). */
function refused(d: string, before: Map<string, string>, r: CliResult, message: RegExp): void {
  expectRefused(r, message);
  expect(snapshot(join(d, 'runs/t'))).toEqual(before);
}

describe('a change to what the run computes is refused', () => {
  it('another data set with the same window count: refused, the key and both values named', async () => {
    const { d, p, before } = copyRun();
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'data.source.seed=6']);
    refused(
      d,
      before,
      r,
      /error: --resume: this config differs from the one runs\/t\/checkpoints\/step-3 was trained with, in what the run computes:\n {2}data\.source\.seed: 5 → 6\nContinuing would join two different runs into one\. .*pass --allow-config-change data\.source\.seed \(or --allow-config-change alone for every key\)\. Nothing was changed/,
    );
    // Refused before the data was read.
    expect(r.stderr).not.toMatch(/\[data\]/);
  });

  it('every difference is listed: precision, loss, AdamW, the batch, LoRA; the schedule change as allowed', async () => {
    const { d, p, before } = copyRun();
    const sets = [
      'precision.activations=f16',
      'loss.huberDelta=1',
      'optim.beta2=0.99',
      'schedule.microBatch=2',
      'optim.lora={"rank":2,"alpha":2,"targets":["q_proj"]}',
      'optim.lr=1e-3',
    ];
    const r = await runCli(d, ['--config', p, '--resume-from', '3', ...setArgs(...sets)]);
    refused(d, before, r, /error: --resume-from 3: this config differs/);
    for (const l of [
      'precision.activations: "f32" → "f16" (the f16 loss scale starts at precision.initialScale)',
      'schedule.microBatch: 4 → 2 (the batch of every step changes)',
      'loss.huberDelta: 2 → 1',
      'optim.beta2: 0.95 → 0.99',
      'optim.lora.rank: (unset) → 2',
      'optim.lora.targets: (unset) → ["q_proj"]',
    ])
      expect(r.stderr).toContain(`\n  ${l}\n`);
    expect(r.stderr).toContain('also changed (allowed on a resume):\n  optim.lr: 0.003 → 0.001\n');
    expect(r.stderr).toMatch(
      /--allow-config-change optim\.beta2,optim\.lora\.rank,optim\.lora\.alpha,optim\.lora\.targets,schedule\.microBatch,loss\.huberDelta,precision\.activations /,
    );
  });

  it('--allow-config-change names what may change: the rest is still refused', async () => {
    const { d, p, before } = copyRun();
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'data.source.seed=6', '--set', 'seed=4', '--allow-config-change', 'data.source']);
    refused(d, before, r, /in what the run computes:\n {2}seed: 3 → 4\n(?! {2}data)/);
  });

  it('a key --allow-config-change does not know, and the flag without a resume: exit 2', async () => {
    const { d, p, before } = copyRun();
    refused(
      d,
      before,
      await runCli(d, ['--config', p, '--resume', '--allow-config-change', 'data.sourc']),
      /--allow-config-change data\.sourc: "data\.sourc" is not a config key \(did you mean data\.source\?\)/,
    );
    refused(
      d,
      before,
      await runCli(d, ['--config', p, '--set', 'logging.dir=runs/u', '--allow-config-change']),
      /--allow-config-change lets a resume go on with a changed config: pass it with --resume or --resume-from/,
    );
    expect(existsSync(join(d, 'runs/u'))).toBe(false);
  });
});

describe('what may change', () => {
  it('--allow-config-change: each allowed change printed, and the run continues', async () => {
    const { d, p } = copyRun();
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'data.source.seed=6', '--set', 'precision.activations=f16', '--allow-config-change']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('[resume] config change allowed by --allow-config-change: data.source.seed: 5 → 6');
    expect(r.stderr).toContain(
      '[resume] config change allowed by --allow-config-change: precision.activations: "f32" → "f16" (the f16 loss scale starts at precision.initialScale)',
    );
    const resumed = readMetrics(d).filter((m) => m.kind === 'train' && (m.step as number) > 3);
    expect(resumed.map((m) => m.step)).toEqual([4, 5, 6]);
    expect(resumed[0]!.lossScale).toBe(65536);
  });

  it('the schedule (steps, lr) changes with a note; logging, checkpoints and device silently', async () => {
    const { d, p } = copyRun();
    const r = await runCli(d, [
      '--config',
      p,
      '--resume',
      ...setArgs('optim.lr=1e-3', 'schedule.steps=7', 'logging.validEvery=2', 'checkpoint.keep=1', 'device.autotune=false'),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('[resume] config changed since runs/t/checkpoints/step-3: optim.lr: 0.003 → 0.001; it applies from step 4 on');
    expect(r.stderr).toContain('[resume] config changed since runs/t/checkpoints/step-3: schedule.steps: 6 → 7; it applies from step 4 on');
    expect(r.stderr).not.toMatch(/logging\.validEvery|checkpoint\.keep|device\.autotune/);
    expect(
      readMetrics(d)
        .filter((m) => m.kind === 'train')
        .map((m) => m.step),
    ).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('the unchanged config resumes without a word about the config', async () => {
    const { d, p } = copyRun();
    const r = await runCli(d, ['--config', p, '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/config change/);
  });
});

describe('configChanges', () => {
  it('a key added to the schema since the checkpoint (absent there, at its default here) is no change', () => {
    const now = parseConfig(tinyConfig());
    const saved = JSON.parse(JSON.stringify(now)) as Record<string, Record<string, unknown>>;
    delete saved.device!.autotune;
    delete saved.loss!.zCoef;
    saved.loss!.zCoef = 1e-3; // as tinyConfig sets it
    delete saved.model!.init;
    expect(configChanges(saved, now)).toEqual([]);
    saved.data!.contextLength = 32;
    expect(configChanges(saved, now)).toEqual([{ key: 'data.contextLength', saved: 32, now: 24, kind: 'locked' }]);
  });
});

describe('docs/CONFIG.md "Resuming with a changed config"', () => {
  it('lists the free and noted keys of src/train/config.ts, and locked keys that are locked', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/CONFIG.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Resuming with a changed config'), doc.indexOf('\n## ', doc.indexOf('## Resuming with a changed config') + 5));
    const row = (group: string) =>
      [...(section.split('\n').find((l) => l.startsWith(`| ${group} |`)) ?? '').split('|')[2]!.matchAll(/`([\w.]+)`/g)].map((m) => m[1]!);
    expect(row('free')).toEqual(RESUME_FREE);
    expect(row('noted')).toEqual(RESUME_NOTED);
    const locked = row('locked');
    expect(locked.length).toBeGreaterThan(5);
    for (const k of locked) expect(resumeClass(k), k).toBe('locked');
  });
});
