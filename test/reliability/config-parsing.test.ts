/**
 * Config parsing refuses what would crash or poison it, through the real CLI: a config nested
 * deeper than MAX_CONFIG_DEPTH (structuredClone's RangeError before), prototype keys in the file
 * or in --set (`--set __proto__.x=1` polluted Object.prototype and crashed zod before), and an
 * error that came from --set names the --set instead of telling the user to fix the file.
 * docs/RELIABILITY.md "Config parsing".
 */
import { describe, it, expect } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, MAX_CONFIG_DEPTH, applyOverride, parseConfig } from '../../src/train/config.ts';
import { runCli, scratch, tinyConfig, writeConfig, type CliResult, expectRefused, tinyRun } from '../train/cli-helpers.ts';

/** Exit 2, the message, no stack trace, and no run folder created. */
function refused(d: string, r: CliResult, message: RegExp): void {
  expectRefused(r, message);
  expect(r.stderr).not.toMatch(/RangeError|TypeError/);
  expect(existsSync(join(d, 'runs'))).toBe(false);
}

/** `[[[...1...]]]`, n brackets deep, as JSON text (JSON.stringify itself overflows on deep values). */
const nested = (n: number): string => `${'['.repeat(n)}1${']'.repeat(n)}`;

describe('a depth limit', () => {
  it('a config file nested 5,000 levels deep: the file and the path where it went too deep, exit 2', async () => {
    const d = scratch();
    const cfg = JSON.stringify(tinyConfig()).replace('"optim":{', `"optim":{"extra":${nested(5000)},`);
    writeFileSync(join(d, 'deep.json'), cfg);
    const r = await runCli(d, ['--config', 'deep.json']);
    refused(
      d,
      r,
      new RegExp(
        `invalid config ${join(d, 'deep.json').replace(/[.]/g, '\\.')}: nested more than ${MAX_CONFIG_DEPTH} levels deep at optim\\.extra(\\.0){30}: the schema needs 5`,
      ),
    );
    expect(r.stderr.length).toBeLessThan(600);
  });

  it('a --set value nested too deep names the --set', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', `model.init.from=${nested(200)}`]);
    refused(d, r, /--set model\.init\.from=\[\[\[.*\.\.\.: the value is nested more than 32 levels deep at model\.init\.from(\.0){29}/);
  });

  it('32 levels are allowed through to the schema (which then names the key)', () => {
    // optim.extra + 29 arrays inside: the deepest container is at level 32.
    const raw = { ...tinyConfig(), optim: { lr: 1e-3, extra: JSON.parse(nested(MAX_CONFIG_DEPTH - 2)) } };
    expect(() => parseConfig(raw, 'x.json')).toThrow(/optim\.extra: unknown key/);
    const deeper = { ...tinyConfig(), optim: { lr: 1e-3, extra: JSON.parse(nested(MAX_CONFIG_DEPTH - 1)) } };
    expect(() => parseConfig(deeper, 'x.json')).toThrow(/nested more than 32 levels deep/);
  });
});

describe('prototype keys', () => {
  it('--set __proto__.x=1, constructor.prototype.x=1 and a __proto__ key in a --set value: refused, exit 2', async () => {
    const { d, p } = tinyRun();
    refused(
      d,
      await runCli(d, ['--config', p, '--set', '__proto__.polluted=1']),
      /error: --set __proto__\.polluted=1: "__proto__" is not a config key: __proto__, constructor, prototype are refused \(they would reach JavaScript's object internals\)\. The top-level keys are seed, model, data/,
    );
    refused(
      d,
      await runCli(d, ['--config', p, '--set', 'constructor.prototype.polluted=1']),
      /--set constructor\.prototype\.polluted=1: "constructor" is not a config key/,
    );
    refused(d, await runCli(d, ['--config', p, '--set', 'model.init.prototype=1']), /--set model\.init\.prototype=1: "prototype" is not a config key/);
    refused(
      d,
      await runCli(d, ['--config', p, '--set', 'model={"__proto__":{"polluted":1}}']),
      /--set model=\{"__proto__":\{"polluted":1\}\}: "__proto__" at model\.__proto__ is not a config key/,
    );
  });

  it('a "__proto__" key in the config file: refused with its path', async () => {
    const d = scratch();
    writeFileSync(join(d, 'c.json'), JSON.stringify(tinyConfig()).replace('"optim":{', '"optim":{"__proto__":{"lr":5},'));
    refused(d, await runCli(d, ['--config', 'c.json']), /invalid config .*c\.json: "__proto__" at optim\.__proto__ is not a config key/);
  });

  it('Object.prototype is untouched after every refused key', () => {
    const tries = ['__proto__.polluted=1', 'constructor.prototype.polluted=1', 'model.__proto__.polluted=1', 'a.constructor.polluted=1'];
    for (const t of tries) expect(() => parseConfig(tinyConfig(), 'x.json', [t])).toThrow(ConfigError);
    expect(() => parseConfig(JSON.parse('{"__proto__": {"polluted": 1}}'), 'x.json')).toThrow(/"__proto__" at __proto__ is not a config key/);
    expect(() => applyOverride({}, 'x={"__proto__":{"polluted":1}}')).toThrow(ConfigError);
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A key Object.prototype has (toString) is an unknown key, not "not an object".
    expect(() => parseConfig(tinyConfig(), 'x.json', ['optim.toString=1'])).toThrow(/optim\.toString: unknown key/);
  });
});

describe('an error that came from --set says so', () => {
  it('a bad --set value names the --set, and does not send the user to the file', async () => {
    const { d, p } = tinyRun();
    const r = await runCli(d, ['--config', p, '--set', 'optim.lr=abc']);
    refused(
      d,
      r,
      /optim\.lr: expected a number, got "abc" \(from --set optim\.lr=abc\)\nFix --set optim\.lr=abc: the value comes from the command line, not from .*config\.json/,
    );
    expect(r.stderr).not.toMatch(/Fix the key\(s\) in/);
  });

  it('a cross-key check broken by a --set names that --set', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'schedule.steps=1']);
    refused(d, r, /schedule\.warmupSteps: 2 exceeds schedule\.steps 1: .* \(from --set schedule\.steps=1\)/);
  });

  it('a --set replacing a section: the missing key inside it is blamed on that --set', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig()), '--set', 'optim={"beta1":0.8}']);
    refused(d, r, /optim\.lr: required \(a number\) but missing \(from --set optim=\{"beta1":0\.8\}\)/);
  });

  it('a file error and a --set error together: each named, the fix names both', async () => {
    const d = scratch();
    const p = writeConfig(d, { ...tinyConfig(), seed: -1 });
    const r = await runCli(d, ['--config', p, '--set', 'model.topK=9']);
    refused(d, r, /seed: expected a number >= 0, got -1\n/);
    expect(r.stderr).toMatch(/model\.topK: topK 9 exceeds experts 4: .* \(from --set model\.topK=9\)/);
    expect(r.stderr).toMatch(/Fix the key\(s\) in .*config\.json, and --set model\.topK=9/);
  });

  it('an error in the file alone still points at the file', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, { ...tinyConfig(), seed: -1 }), '--set', 'optim.lr=1e-3']);
    refused(d, r, /seed: expected a number >= 0, got -1\nFix the key\(s\) in .*config\.json, or override a value with --set <path>=<value>/);
    expect(r.stderr).not.toMatch(/from --set/);
  });
});
