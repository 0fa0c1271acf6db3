import { describe, expect, it } from 'vitest';
import { headInit } from '../../experiments/scenarios.ts';
import { SCENARIO_TIMEOUT, diagnosisOf, expectDiagnosisAsScenarioSays, runFast } from './helpers.ts';

describe('experiment head-init (fast)', () => {
  it(
    'std 0.02 starts at ln 280; std 1.0 starts far above it with a gradient that clipping mostly removes',
    async () => {
      const r = await runFast(headInit);
      const o = r.outcome;
      const { bad, good } = o.runs;
      expect(Math.abs(good.lossFirst - o.lnClasses) / o.lnClasses).toBeLessThan(0.05);
      expect(Math.abs(good.validFirst - o.lnClasses) / o.lnClasses).toBeLessThan(0.05);
      expect(bad.lossFirst).toBeGreaterThan(2 * o.lnClasses);
      expect(bad.gradNormFirst).toBeGreaterThan(20 * good.gradNormFirst);
      expect(bad.clippedFirst).toBeGreaterThan(0.95);
      // The fix's step-1 norm is a few units at micro-batch 8, so clipping still trims it, much less.
      expect(good.clippedFirst).toBeLessThan(0.85);
      // The harm a user sees, already at 6 steps: a worse validation loss, and only the fix gets
      // below a uniform guess.
      const [valid, below] = r.harm.metrics;
      expect(valid!.comparisons[0]!.shown).toBe(true);
      expect(valid!.arms[0]!.values[0]!).toBeGreaterThan(valid!.arms[1]!.values[0]! + 1);
      expect(below!.arms.map((a) => a.values[0])).toEqual([Infinity, good.stepBelowLn]);
      expect(below!.comparisons[0]!.shown).toBe(true);
      // The diagnosis: the first report's two findings on the failure arm, nothing on the fix.
      expectDiagnosisAsScenarioSays(r);
      expect(diagnosisOf(r, 'head std 1.0 (failure)').ids.sort()).toEqual(['bad-start', 'clip-limited']);
      expect(diagnosisOf(r, 'head std 0.02 (fix)').ids).toEqual([]);
    },
    SCENARIO_TIMEOUT,
  );
});
