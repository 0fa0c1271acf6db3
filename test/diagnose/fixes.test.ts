/**
 * Every fix is a real config change: each `--set` a finding proposes, applied to that run's own
 * config, passes the training config's schema (the check train.js itself makes), and every
 * experiment it names is a scenario `npm run experiment` runs.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../experiments/scenarios.ts';
import { parseConfig } from '../../src/train/config.ts';
import { diagnoseFixture, FIXTURES } from './helpers.ts';
import { fixture } from './helpers.ts';

const runs = readdirSync(FIXTURES).filter((n) => statSync(join(FIXTURES, n)).isDirectory());

describe('fixes and experiments', () => {
  it('fixtures with a header produce fixes', () => {
    expect(runs.length).toBeGreaterThan(15);
  });

  for (const name of runs) {
    it(`${name}: every --set parses against the run's config, every experiment exists`, () => {
      const config = fixture(name).header.config;
      const d = diagnoseFixture(name);
      for (const f of d.findings) {
        if (config) expect(() => parseConfig(config, `${name} + ${f.id}`, f.fix.sets)).not.toThrow();
        for (const s of f.fix.sets) expect(s).toMatch(/^[a-zA-Z]+(\.[a-zA-Z]+)+=\S+$/);
        if (f.experiment) expect(SCENARIOS.map((s) => s.name)).toContain(f.experiment);
        // The fix actually changes the config (a no-op fix would be a false promise).
        if (config && f.fix.sets.length) expect(JSON.stringify(parseConfig(config, name, f.fix.sets))).not.toBe(JSON.stringify(parseConfig(config, name)));
      }
    });
  }
});
