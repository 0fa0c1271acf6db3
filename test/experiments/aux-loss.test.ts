import { describe, expect, it } from 'vitest';
import { auxLoss } from '../../experiments/scenarios.ts';
import { SCENARIO_TIMEOUT, runFast } from './helpers.ts';

describe('experiment aux-loss (fast)', () => {
  it(
    'aux off lets a layer concentrate; a strong aux pins the router to uniform and inflates the clipped gradient',
    async () => {
      const { outcome: o } = await runFast(auxLoss);
      const { 'aux-off': off, 'aux-strong': strong, 'aux-warmed': warm } = o.runs;
      // Off: in 40 fast steps a layer already concentrates (full collapse onto 2 experts takes ~150
      // steps at micro-batch 16, see the full report): lower entropy and a larger top share than strong.
      expect(Math.min(...off.entropyLast)).toBeLessThan(Math.min(...strong.entropyLast) - 0.08);
      expect(Math.max(...off.maxShareTail)).toBeGreaterThan(Math.max(...strong.maxShareTail) + 0.03);
      // Strong from step 0: balanced loads, near-uniform probabilities.
      expect(Math.max(...strong.maxShareTail)).toBeLessThan(0.42);
      for (const e of strong.entropyLast) expect(e).toBeGreaterThan(0.98 * Math.log(4));
      // Its gradient is part of the global norm: clipping takes more of step 1 than with the warmed aux.
      expect(strong.clippedFirst).toBeGreaterThan(warm.clippedFirst + 0.2);
      for (const r of [off, strong, warm]) expect(Number.isFinite(r.validMainLast)).toBe(true);
    },
    SCENARIO_TIMEOUT,
  );
});
