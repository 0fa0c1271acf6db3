/**
 * Every failure is a message that names the problem, the value and the fix (issue 14, item 10),
 * and a second sweep over the classes of bad input — config, data, checkpoint, flags,
 * environment, signals — each ending in a clear message, the documented exit code, no stack
 * trace, and nothing already saved lost. The cases are listed in docs/RELIABILITY.md.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeBad } from '../../src/train/step/guards.ts';
import { runCli, scratch, tinyConfig, writeConfig, type CliResult, startLongRun, tinyRun } from './cli-helpers.ts';

/** Exit 2, the message on stderr, no stack trace, and the run folder not created. */
function badInput(d: string, r: CliResult, message: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
  expect(existsSync(join(d, 'runs'))).toBe(false);
}

describe('issue 14 item 10: problem, value and fix', () => {
  it('warmupSteps over steps names both values and the --set that fixes it', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'schedule.warmupSteps=30', '--set', 'schedule.steps=5']);
    badInput(
      d,
      r,
      /schedule\.warmupSteps: 30 exceeds schedule\.steps 5: lower it \(--set schedule\.warmupSteps=0\) or raise schedule\.steps \(--set schedule\.steps=300\)/,
    );
  });

  it('null for a CSV column says what is expected and how to leave it unset', async () => {
    const d = scratch();
    writeFileSync(join(d, 'x.csv'), 'v\n1\n2\n');
    const cfg = tinyConfig({ data: { source: { kind: 'csv', path: 'x.csv' }, contextLength: 24 } });
    const r = await runCli(d, ['--config', writeConfig(d, cfg), '--set', 'data.source.timeColumn=null']);
    badInput(
      d,
      r,
      /data\.source\.timeColumn: expected a string or a number, got null \(null is a value, not "unset": to leave data\.source\.timeColumn unset, remove the key\)/,
    );
    expect(r.stderr).not.toMatch(/Invalid input/);
    // The value came from --set: the fix names it, not the file.
    expect(r.stderr).toMatch(
      /\(from --set data\.source\.timeColumn=null\)\nFix --set data\.source\.timeColumn=null: the value comes from the command line, not from .*config\.json/,
    );
  });

  it('the guard says "no finite value at all" rather than "finite min NaN max NaN mean NaN"', () => {
    expect(describeBad({ name: 'model.layers.1.router_logits', layer: 1, nonFinite: 96, min: NaN, max: NaN, mean: NaN })).toBe(
      'model.layers.1.router_logits (layer 1): 96 non-finite values; no finite value at all',
    );
    expect(describeBad({ name: 'x', layer: -1, nonFinite: 1, min: -2, max: 3, mean: 0.5 })).toBe(
      'x: 1 non-finite values; finite min -2.000 max 3.000 mean 0.5000',
    );
  });

  it('the plan header calls a preset with changed dimensions "custom", not by the preset name', async () => {
    const d = scratch();
    const changed = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--plan']);
    expect(changed.status).toBe(0);
    expect(changed.stdout).toMatch(/^Memory plan for \S+ \([^)]*\): custom \(hidden 32, [^)]*\), 27,520 parameters/);
    const same = await runCli(d, [
      '--config',
      writeConfig(d, { ...tinyConfig(), model: { preset: 'small-moe', horizons: [1, 8, 16] } }, 'same.json'),
      '--plan',
    ]);
    expect(same.stdout).toMatch(/^Memory plan for \S+ \([^)]*\): custom \(/); // horizons differ from the preset's [1, 8, 32]
    const exact = await runCli(d, [
      '--config',
      writeConfig(
        d,
        { ...tinyConfig(), model: { preset: 'small-moe' }, data: { source: { kind: 'synthetic', series: 3, length: 300 }, contextLength: 64 } },
        'exact.json',
      ),
      '--plan',
    ]);
    expect(exact.stdout).toMatch(/^Memory plan for \S+ \([^)]*\): small-moe \(hidden 64, [^)]*\), 331,776 parameters/);
  });

  it('an unknown flag points at --help (and at the flag meant)', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', 'x.json', '--resum']);
    badInput(d, r, /error: unknown option '--resum'\n\(Did you mean --resume\?\)\n\(node train\.js --help lists every flag\)/);
    expect((await runCli(d, ['--bogus'])).stderr).toMatch(/node train\.js --help lists every flag/);
  });

  it('a binary file given as CSV: named as binary, none of its bytes in the message', async () => {
    const d = scratch();
    const bin = Buffer.alloc(8192);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 37) % 256;
    writeFileSync(join(d, 'weights.bin'), bin);
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'weights.bin' }, contextLength: 24 } }))]);
    badInput(d, r, /weights\.bin is not a text file \(a NUL byte at byte 0: it looks binary\): point data\.source\.path at a CSV or JSON\(L\) text file/);
    expect(r.stderr.length).toBeLessThan(400);
  });
});

describe('second sweep: config', () => {
  it('a folder as --config, a wrong source kind, a key of another source kind, bad model dimensions', async () => {
    const d = scratch();
    mkdirSync(join(d, 'configs'));
    badInput(
      d,
      await runCli(d, ['--config', 'configs']),
      /--config configs is a folder, not a file: pass the JSON file \(e\.g\. --config configs\/small-moe\.json\)/,
    );
    const p = writeConfig(d, tinyConfig());
    badInput(
      d,
      await runCli(d, ['--config', p, '--set', 'data.source.kind=parquet']),
      /data\.source\.kind: expected one of "csv", "jsonl", "json", "dataset", "synthetic", "synthetic-classes", got "parquet"/,
    );
    // Only the keys of the kind in use are offered, not those of every kind.
    const other = await runCli(d, ['--config', p, '--set', 'data.source.column=value']);
    badInput(d, other, /data\.source\.column: unknown key \(allowed here: kind, series, length, seed, trend, seasonality, noise, anomalies\)/);
    badInput(
      d,
      await runCli(d, ['--config', p, '--set', 'model.heads=3']),
      /model\.heads: hidden 32 is not divisible by heads 3: pick heads that divide model\.hidden \(e\.g\. 8 or 16\)/,
    );
    badInput(d, await runCli(d, ['--config', p, '--set', 'model.horizons=5']), /model\.horizons: expected an array, got 5/);
  });
});

describe('second sweep: data', () => {
  it('an unclosed quote, a folder as the data path', async () => {
    const d = scratch();
    writeFileSync(join(d, 'q.csv'), `v\n1\n"2\n3\n${'4\n'.repeat(2000)}`);
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'q.csv' }, contextLength: 24 } }))]);
    badInput(d, r, /q\.csv: cannot parse as CSV: Quote Not Closed.*: fix the file \(quotes, delimiter\) or set data\.source\.delimiter/);
    expect(r.stderr.length).toBeLessThan(600);
    mkdirSync(join(d, 'data.csv'));
    badInput(
      d,
      await runCli(d, ['--config', writeConfig(d, tinyConfig({ data: { source: { kind: 'csv', path: 'data.csv' }, contextLength: 24 } }))]),
      /data path is not a file: .*data\.csv: check data\.source\.path/,
    );
  });
});

describe('second sweep: flags and checkpoints', () => {
  it('--stop-after at or before the step a resume starts after: exit 2, nothing touched', async () => {
    const { d, p } = tinyRun();
    expect((await runCli(d, ['--config', p, '--stop-after', '3'])).status).toBe(0);
    const metrics = readFileSync(join(d, 'runs/t/metrics.jsonl'), 'utf8');
    const r = await runCli(d, ['--config', p, '--resume', '--stop-after', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /--stop-after 2: the run resumes after step 3, so it would stop before training\. Pass a later step \(4\.\.5\) or leave --stop-after out/,
    );
    expect(readFileSync(join(d, 'runs/t/metrics.jsonl'), 'utf8')).toBe(metrics);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
  });

  it('--resume-from with --overwrite, and a malformed --stop-after', async () => {
    const { d, p } = tinyRun();
    badInput(d, await runCli(d, ['--config', p, '--resume-from', '3', '--overwrite']), /--overwrite starts a fresh run/);
    badInput(d, await runCli(d, ['--config', p, '--stop-after', '0']), /--stop-after.*expected a positive integer, got "0"/);
  });
});

describe('second sweep: environment', () => {
  it('no Vulkan driver: the fix, exit 2, and no run folder left behind', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig())], { VK_ICD_FILENAMES: join(d, 'no-such-driver.json') });
    badInput(d, r, /No WebGPU adapter found: Dawn needs a Vulkan driver\.\nFix on Debian\/Ubuntu without a GPU/);
  });

  it('logging.dir under a file, and a malformed WEBGPU_MOE_FAULT', async () => {
    const d = scratch();
    writeFileSync(join(d, 'runs'), '');
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig())]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/logging\.dir runs\/t cannot be created: a file is in the way \(ENOTDIR\)\. Set logging\.dir to a folder path/);
    const f = await runCli(d, ['--config', join(d, 'config.json'), '--set', 'logging.dir=elsewhere'], { WEBGPU_MOE_FAULT: 'disk-full' });
    expect(f.status).toBe(2);
    expect(f.stderr).toMatch(/WEBGPU_MOE_FAULT: "disk-full": expected <ENOSPC\|EIO\|EROFS\|EACCES>@<site>.*unset it for normal runs/);
    expect(existsSync(join(d, 'elsewhere'))).toBe(false);
  });
});

describe('second sweep: signals', () => {
  it('a second SIGINT quits at once (exit 130): the lock is released, the last checkpoint intact', async () => {
    const { d, p, run } = await startLongRun(2);
    run.child.kill('SIGINT');
    await run.waitFor(/\[signal\] SIGINT: finishing this step/);
    run.child.kill('SIGINT');
    const end = await run.exited;
    expect(end.code, end.stderr).toBe(130);
    expect(existsSync(join(d, 'runs/t/lock'))).toBe(false);
    const r = await runCli(d, ['--config', p, '--resume', '--stop-after', '5']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/stale lock/);
    expect(r.stderr).toMatch(/continuing after step \d+/);
  });
});
