import { describe, expect, it } from 'vitest';
import { headInit } from '../../experiments/scenarios.ts';
import { SCENARIO_TIMEOUT, runFast } from './helpers.ts';

describe('experiment head-init (fast)', () => {
  it(
    'std 0.02 starts at ln 280; std 1.0 starts far above it with a gradient that clipping mostly removes',
    async () => {
      const { outcome: o } = await runFast(headInit);
      const { bad, good } = o.runs;
      expect(Math.abs(good.lossFirst - o.lnClasses) / o.lnClasses).toBeLessThan(0.05);
      expect(Math.abs(good.validFirst - o.lnClasses) / o.lnClasses).toBeLessThan(0.05);
      expect(bad.lossFirst).toBeGreaterThan(2 * o.lnClasses);
      expect(bad.gradNormFirst).toBeGreaterThan(20 * good.gradNormFirst);
      expect(bad.clippedFirst).toBeGreaterThan(0.95);
      // The fix's step-1 norm is a few units at micro-batch 8, so clipping still trims it, much less.
      expect(good.clippedFirst).toBeLessThan(0.85);
    },
    SCENARIO_TIMEOUT,
  );
});
