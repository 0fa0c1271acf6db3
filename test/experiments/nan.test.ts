import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nanScenario } from '../../experiments/scenarios.ts';
import { SCENARIO_TIMEOUT, runFast } from './helpers.ts';

describe('experiment nan (fast)', () => {
  it('unguarded goes NaN for good; guarded skips the step, names the injected layer and trains on', async () => {
    const { outcome: o, readme } = await runFast(nanScenario);
    const steps = o.steps - o.injectStep + 1;
    // Unguarded: NaN from the injected step to the end (the weights are dead).
    expect(o.unguarded.firstNonFiniteLoss).toBe(o.injectStep);
    expect(o.unguarded.nonFiniteSteps).toBe(steps);
    expect(Number.isNaN(o.unguarded.validLast)).toBe(true);
    // The naive view hides every one of those steps as 0.0 while the grad norm reads NaN.
    expect(o.naive.zeroLossSteps).toBe(steps);
    expect(o.naive.nanGradSteps).toBeGreaterThan(0);
    // Guarded: exactly the injected step is skipped, the first bad tensor is layer 1's router logits.
    expect(o.guarded.skipped).toEqual([o.injectStep]);
    expect(o.guarded.firstBad).toBe('model.layers.1.router_logits');
    expect(o.guarded.firstBadLayer).toBe(1);
    expect(Number.isFinite(o.guarded.lastLoss)).toBe(true);
    expect(Number.isFinite(o.guarded.validLast)).toBe(true);
    const text = readFileSync(readme, 'utf8');
    expect(text).toContain('model.layers.1.router_logits');
    expect(text).toContain('guards off, NaN-filtering logger');
  }, SCENARIO_TIMEOUT);
});
