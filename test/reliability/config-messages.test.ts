/**
 * Config messages that point at the fix, through the real CLI: "did you mean" for a misspelt
 * key, `--set key value` (a space for "=") named instead of commander's "too many arguments",
 * invalid JSON as file:line:column with the line and a caret, and a LoRA rank above the width of
 * the layers it adapts; the config file given without --config gets the --config hint.
 * docs/RELIABILITY.md "Config parsing".
 */
import { describe, it, expect } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closestKey, jsonErrorPosition } from '../../src/train/config.ts';
import { runCli, scratch, tinyConfig, writeConfig, type CliResult, expectRefused, setArgs, tinyRun } from '../train/cli-helpers.ts';

function refused(d: string, r: CliResult, message: RegExp): void {
  expectRefused(r, message);
  expect(existsSync(join(d, 'runs'))).toBe(false);
}

describe('did you mean', () => {
  it('a misspelt key in the file, a key under the wrong section, a name from another trainer', async () => {
    const d = scratch();
    const cfg = tinyConfig();
    const p = writeConfig(d, { ...cfg, schedule: { ...(cfg.schedule as object), warmup_steps: 2, stepz: 4 }, optim: { lr: 1e-3, steps: 5, learning_rate: 1 } });
    const r = await runCli(d, ['--config', p]);
    refused(d, r, /schedule\.warmup_steps: unknown key; did you mean schedule\.warmupSteps\? \(allowed here: steps, warmupSteps/);
    expect(r.stderr).toContain('schedule.stepz: unknown key; did you mean schedule.steps?');
    expect(r.stderr).toContain('optim.steps: unknown key; did you mean schedule.steps? (steps is not a key of optim)');
    expect(r.stderr).toContain('optim.learning_rate: unknown key; did you mean optim.lr?');
  });

  it('from --set, with the --set named', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'optim.lrr=3e-4']);
    refused(d, r, /optim\.lrr: unknown key; did you mean optim\.lr\? \(allowed here: lr, .*\) \(from --set optim\.lrr=3e-4\)/);
  });

  it('no guess when nothing is close', () => {
    expect(closestKey('column', ['kind', 'series', 'length', 'seed', 'trend', 'seasonality', 'noise', 'anomalies'])).toBeNull();
    expect(closestKey('micro_batch', ['steps', 'microBatch'])).toEqual({ key: 'microBatch', exact: true });
    expect(closestKey('hiden', ['hidden', 'heads'])).toEqual({ key: 'hidden', exact: false });
  });
});

describe('--set written with a space', () => {
  it('--set optim.lr 3e-4: names the one-argument form with the value it saw', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'optim.lr', '3e-4']);
    refused(d, r, /expected path=value, got "optim\.lr": write --set optim\.lr=3e-4 \(one argument, "=" between the key path and the value\)/);
    expect(r.stderr).not.toMatch(/too many arguments/);
  });

  it('--set optim.lr= 3e-4 and -s optim.lr at the end', async () => {
    const { d, p } = tinyRun();
    refused(
      d,
      await runCli(d, ['--config', p, '--set', 'optim.lr=', '3e-4']),
      /"optim\.lr=" has no value after "=": write --set optim\.lr=3e-4 \(one argument: no space after "="\)/,
    );
    refused(d, await runCli(d, ['--config', p, '-s', 'optim.lr']), /write --set optim\.lr=<value>/);
  });
});

describe('the config file without --config', () => {
  it('train.js small-moe.json: commander\'s "too many arguments", then the hint with --config', async () => {
    const { d, p } = tinyRun();
    const r = await runCli(d, [p]);
    refused(d, r, /too many arguments/);
    const lines = r.stderr.trim().split('\n');
    // The hint comes right after commander's line, before the help pointer.
    expect(lines[1]).toBe(`hint: train.js takes the config file after --config: train.js --config ${p}`);
  });

  it('no hint for a stray word that is not a config file', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), 'extra']);
    refused(d, r, /too many arguments/);
    expect(r.stderr).not.toMatch(/hint:/);
  });
});

describe('invalid JSON', () => {
  it('a trailing comma: file:line:column, the line, a caret under the column', async () => {
    const d = scratch();
    const text = JSON.stringify(tinyConfig(), null, 2).replace('"lr": 0.003', '"lr": 0.003,');
    writeFileSync(join(d, 'c.json'), text);
    const lines = text.split('\n');
    const n = lines.findIndex((l) => l.includes('"lr": 0.003,'));
    const r = await runCli(d, ['--config', 'c.json']);
    // The error is at the "}" after the comma, on the next line.
    const bad = lines[n + 1]!;
    const col = bad.indexOf('}') + 1;
    refused(d, r, new RegExp(`config .*c\\.json:${n + 2}:${col} is not valid JSON: `));
    expect(r.stderr).toContain(`\n  ${bad}\n  ${' '.repeat(col - 1)}^\n`);
    expect(r.stderr).toMatch(/Fix the file at line \d+, column \d+ \(JSON has no comments and no trailing commas/);
  });

  it('a comment, a truncated file, a bare word, an empty file', async () => {
    const d = scratch();
    writeFileSync(join(d, 'comment.json'), '{\n  // the model\n  "seed": 1\n}\n');
    refused(d, await runCli(d, ['--config', 'comment.json']), /comment\.json:2:3 is not valid JSON: .*\n {4}\/\/ the model\n {4}\^/);
    writeFileSync(join(d, 'cut.json'), '{\n  "seed": 1,\n  "model": {"preset": "small-moe"\n\n');
    refused(d, await runCli(d, ['--config', 'cut.json']), /cut\.json:3:34 is not valid JSON: the file ends before the JSON does/);
    writeFileSync(join(d, 'word.json'), '{"seed": tru}');
    refused(d, await runCli(d, ['--config', 'word.json']), /word\.json:1:10 is not valid JSON: unexpected "t"\n  \{"seed": tru\}\n {11}\^/);
    writeFileSync(join(d, 'empty.json'), '\n');
    refused(d, await runCli(d, ['--config', 'empty.json']), /empty\.json is empty: a config is one JSON object/);
  });

  it('jsonErrorPosition agrees with JSON.parse on what is JSON', () => {
    const good = ['{}', '[]', '1', '-0.5e+3', '"a\\u00e9\\n"', '{"a": [1, {"b": null}], "c": true}', ' \n{"x":\t"y"}\n '];
    for (const t of good) expect(jsonErrorPosition(t), t).toBe(-1);
    const bad: [string, number][] = [
      ['{"a": 1,}', 8],
      ['[1 2]', 3],
      ['{"a" 1}', 5],
      ['{"a": 01}', 7],
      ['"\\x"', 2],
      ['{"a": 1', 7],
      ['', 0],
      ['{} {}', 3],
    ];
    for (const [t, at] of bad) {
      expect(() => JSON.parse(t), t).toThrow();
      expect(jsonErrorPosition(t), t).toBe(at);
    }
  });

  it('a byte-order mark before the JSON is accepted', async () => {
    const d = scratch();
    writeFileSync(join(d, 'bom.json'), `\uFEFF${JSON.stringify(tinyConfig())}`);
    const r = await runCli(d, ['--config', 'bom.json', '--plan']);
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('LoRA rank', () => {
  it('a rank above the width of the narrowest adapted layer: names the layer, its width and the rank that fits', async () => {
    const d = scratch();
    const lora = '{"rank":1024,"alpha":8,"targets":["q_proj","down_proj"]}';
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', `optim.lora=${lora}`]);
    // tiny model: hidden 32, moeIntermediate 16: the routed experts' down_proj is 16 wide.
    refused(
      d,
      r,
      /optim\.lora\.rank: rank 1024 exceeds the width of model\.layers\.\*\.ffn_layer\.experts\.\*\.down_proj: in 16, out 32, so B·A can have rank 16 at most .*Use a rank up to 16 \(e\.g\. --set optim\.lora\.rank=8\)/,
    );
    expect(r.stderr).toContain(`(from --set optim.lora=${lora})`);
  });

  it('the rank that fits trains; adapters larger than the model get a warning', async () => {
    const d = scratch();
    const lora = '{"rank":16,"alpha":16,"targets":["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]}';
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), ...setArgs(`optim.lora=${lora}`, 'schedule.steps=2', 'schedule.warmupSteps=0')]);
    expect(r.status, r.stderr).toBe(0);
    // 16 x (8 x 64 + 8 x 64 + 2 x 96 + 8 x 48 + 2 x 64) = 27,648 adapter parameters on 27,520.
    expect(r.stderr).toContain('[lora] warning: the adapters hold 27,648 parameters, more than the 27,520 of the model they adapt');
    const small = await runCli(d, [
      '--config',
      writeConfig(d, tinyConfig({ logging: { dir: 'runs/u', validEvery: 0, progress: 'none' } }), 'u.json'),
      ...setArgs('optim.lora={"rank":2,"alpha":2,"targets":["q_proj"]}', 'schedule.steps=1', 'schedule.warmupSteps=0'),
    ]);
    expect(small.status, small.stderr).toBe(0);
    expect(small.stderr).not.toContain('[lora] warning');
  });
});
