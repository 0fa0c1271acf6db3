import { describe, expect, it } from 'vitest';
import { auxLoss } from '../../experiments/scenarios.ts';
import { diagnosisOf, expectDiagnosisAsScenarioSays, runFast } from './helpers.ts';

describe('experiment aux-loss (fast: the full version, seed 3 only)', () => {
  it(
    'aux off collapses layer 0 and the diagnosis names it; a strong aux pins the router to uniform, dominates the loss and inflates the clipped gradient',
    async () => {
      const r = await runFast(auxLoss);
      const { 'aux-off': off, 'aux-strong': strong, 'aux-warmed': warm } = r.outcome.runs;
      // Off: layer 0 keeps two experts for every token (largest share near 0.5, lower entropy than strong).
      expect(Math.min(...off.entropyLast)).toBeLessThan(Math.min(...strong.entropyLast) - 0.08);
      expect(Math.max(...off.maxShareTail)).toBeGreaterThan(Math.max(...strong.maxShareTail) + 0.03);
      // Strong from step 0: near-uniform probabilities (which, pooled, do not balance the picks by themselves).
      for (const e of strong.entropyLast) expect(e).toBeGreaterThan(0.98 * Math.log(4));
      // Its gradient is part of the global norm: clipping takes more of step 1 than with the warmed aux.
      expect(strong.clippedFirst).toBeGreaterThan(warm.clippedFirst + 0.2);
      for (const x of [off, strong, warm]) expect(Number.isFinite(x.validMainLast)).toBe(true);
      // Both failure arms are compared with the fix on every harm metric (the full report gives the verdicts).
      for (const m of r.harm.metrics) expect(m.comparisons.map((c) => c.slug)).toEqual(['aux-off', 'aux-strong']);
      // The diagnosis: each failure arm its own finding, the fix none.
      expectDiagnosisAsScenarioSays(r);
      expect(diagnosisOf(r, 'aux off (failure)').ids).toEqual(['routing-collapse@layer0']);
      expect(diagnosisOf(r, 'aux 1 from step 0 (failure)').ids).toEqual(['aux-dominates']);
      expect(diagnosisOf(r, 'aux 0.02 warmed up (fix)').ids).toEqual([]);
    },
    // Three 150-step runs: the collapse needs that long to count (see the scenario's fast sets).
    900_000,
  );
});
