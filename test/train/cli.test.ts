/**
 * The training CLI end to end (`node train.js`), as a user types it: bad input fails with a clear
 * message and exit code 2 and loses nothing already saved; resume reproduces an uninterrupted run.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMetrics, runCli, scratch, tinyConfig, writeConfig, startLongRun, tinyRun } from './cli-helpers.ts';

describe('train.js: bad input', () => {
  it('missing config file', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', 'nope.json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/config file not found: .*nope\.json \(check the --config path\)/);
  });

  it('config that is not JSON', async () => {
    const d = scratch();
    writeFileSync(join(d, 'bad.json'), '{ "model": ');
    const r = await runCli(d, ['--config', 'bad.json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is not valid JSON/);
  });

  it('unknown key and wrong type, through the CLI', async () => {
    const d = scratch();
    const cfg = tinyConfig();
    (cfg.optim as Record<string, unknown>).lr = 'fast';
    (cfg.schedule as Record<string, unknown>).epochs = 3;
    const r = await runCli(d, ['--config', writeConfig(d, cfg)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/optim\.lr: .*got "fast"/);
    expect(r.stderr).toMatch(/schedule\.epochs: unknown key/);
    expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
  });

  it('bad --set and bad flags', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p, '--set', 'optim.lr=-1'])).stderr).toMatch(/optim\.lr: .*got -1/);
    const r = await runCli(d, ['--config', p, '--stop-after', 'x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected a positive integer, got "x"/);
    expect((await runCli(d, ['--config', p, '--bogus'])).status).toBe(2);
  });

  it('missing data file names the path and the config key', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'missing.csv' }, contextLength: 24 } }))]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/missing\.csv/);
    expect(r.stderr).toMatch(/data\.source\.path/);
  });

  it('empty data file', async () => {
    const d = scratch();
    writeFileSync(join(d, 'empty.csv'), '');
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'empty.csv' }, contextLength: 24 } }))]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/empty\.csv/);
    expect(r.stderr).toMatch(/empty/i);
  });

  it('data with NaN: an error when asked, repaired and reported by default', async () => {
    const d = scratch();
    const rows = ['value', ...Array.from({ length: 200 }, (_, i) => (i === 50 || i === 51 ? 'NaN' : String(Math.sin(i / 5))))];
    writeFileSync(join(d, 'nan.csv'), rows.join('\n'));
    const strict = await runCli(d, [
      '--config',
      writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'nan.csv', column: 'value' }, contextLength: 24, nonFinite: 'error' } })),
    ]);
    expect(strict.status).toBe(2);
    expect(strict.stderr).toMatch(/non-finite|NaN/);
    const repaired = await runCli(d, [
      '--config',
      writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'nan.csv', column: 'value' }, contextLength: 24 } })),
    ]);
    expect(repaired.status, repaired.stderr).toBe(0);
    expect(repaired.stderr).toMatch(/non-finite points 2, repaired 2/);
  });

  it('horizon longer than the context', async () => {
    const d = scratch();
    const cfg = tinyConfig();
    (cfg.model as Record<string, unknown>).horizons = [1, 48];
    const r = await runCli(d, ['--config', writeConfig(d, cfg)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/horizon 48 is longer than data\.contextLength 24/);
  });

  it('--resume without a checkpoint', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--resume']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--resume: no checkpoint under this folder/);
    expect(existsSync(join(d, 'runs'))).toBe(false); // a refused run leaves nothing behind
  });

  it('a plan over budget stops before allocating, with the breakdown', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--budget-gb', '0.001']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the run does not fit rtx-3090/);
    expect(r.stderr).toMatch(/Verdict: DOES NOT FIT - peak .* exceeds/);
    expect(r.stderr).toMatch(/activations \(forward values held for backward\)/);
    expect(r.stderr).not.toMatch(/adapter:/); // no device was opened
  });
});

describe('train.js: resume', () => {
  it('metrics after --stop-after + --resume equal those of an uninterrupted run', async () => {
    const full = scratch();
    const cfg = tinyConfig();
    const a = await runCli(full, ['--config', writeConfig(full, cfg)]);
    expect(a.status, a.stderr).toBe(0);

    const split = scratch();
    const p = writeConfig(split, cfg);
    const b1 = await runCli(split, ['--config', p, '--stop-after', '3']);
    expect(b1.status, b1.stderr).toBe(0);
    expect(b1.stdout).toMatch(/stopped: 3 steps/);
    const b2 = await runCli(split, ['--config', p, '--resume']);
    expect(b2.status, b2.stderr).toBe(0);
    expect(b2.stderr).toMatch(/continuing after step 3/);

    // Everything but wall-clock and memory-peak fields must be identical, step for step.
    const strip = (m: Record<string, unknown>) => {
      const { ms, liveBytes, peakBytes, ...rest } = m;
      (void ms, liveBytes, peakBytes);
      return rest;
    };
    const ta = readMetrics(full)
      .filter((m) => m.kind === 'train')
      .map(strip);
    const tb = readMetrics(split)
      .filter((m) => m.kind === 'train')
      .map(strip);
    expect(tb.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tb).toEqual(ta);
    expect(readdirSync(join(split, 'runs/t/checkpoints')).filter((n) => n.startsWith('step-'))).toEqual(['step-3', 'step-6']);
    expect(existsSync(join(split, 'runs/t/checkpoints/latest'))).toBe(true);
  });
});

describe('train.js: SIGINT', () => {
  it('finishes the step, saves a checkpoint, exits 130, and --resume continues from it', async () => {
    const { d, p, run } = await startLongRun(0); // interrupt once training is under way
    run.child.kill('SIGINT');
    const { code, stdout, stderr } = await run.exited;
    expect(code, stderr).toBe(130);
    const m = stdout.match(/stopped: SIGINT at step (\d+): checkpoint saved at (\S+) \(continue with --resume\)/);
    expect(m, stdout + stderr).not.toBeNull();
    const stoppedAt = Number(m![1]);
    expect(m![2]).toBe(`runs/t/checkpoints/step-${stoppedAt}`);
    expect(existsSync(join(d, m![2]!, 'model.safetensors'))).toBe(true);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
    const r = await runCli(d, ['--config', p, '--resume', '--set', 'schedule.steps=400', '--stop-after', String(stoppedAt + 1)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`continuing after step ${stoppedAt}`));
  });
});

describe('train.js: device limits', () => {
  it('stops before allocating when one buffer would exceed the device binding limit, naming the knob', async () => {
    const d = scratch();
    const cfg = tinyConfig({ schedule: { steps: 2, warmupSteps: 1, microBatch: 100 } });
    (cfg.model as Record<string, unknown>).moeIntermediate = 4096; // expert gate+up [N*k, 8192] f32 = 150 MiB > lavapipe's 128 MiB
    const r = await runCli(d, ['--config', writeConfig(d, cfg)]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /this device cannot run the step: groupedMatmul \(160\.0 MiB, bound by matmul-(?:blocked|tiled):main#\w+\) is over the 128\.0 MiB per-binding limit/,
    );
    // The first suggestion is the largest micro-batch whose buffers all fit one binding, with
    // accumulation keeping the windows per optimizer step.
    expect(r.stderr).toMatch(/--set schedule\.microBatch=85 --set schedule\.accumulation=2/);
  });
});
