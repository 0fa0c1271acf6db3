import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nanScenario } from '../../experiments/scenarios.ts';
import { SCENARIO_TIMEOUT, diagnosisOf, expectDiagnosisAsScenarioSays, runFast } from './helpers.ts';

describe('experiment nan (fast)', () => {
  it(
    'unguarded goes NaN for good; guarded skips the step, names the injected layer and trains on',
    async () => {
      const r = await runFast(nanScenario);
      const { outcome: o, readme, runs } = r;
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
      // Truthful numbers on bad steps: the routing of a step whose forward was not finite is null
      // in metrics.jsonl (the top-k of NaN logits would read as load [0.5, 0.5, 0, 0], entropy 0).
      const raw = (slug: string) =>
        readFileSync(join(runs.find((r) => r.variant.slug === slug)!.dir, 'metrics.jsonl'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"kind":"train"'))
          .map((l) => JSON.parse(l) as { step: number; routing: { load: unknown; entropy: unknown; maxShare: unknown; switchLoss: unknown }[] });
      const nulls = (r: { routing: { load: unknown; entropy: unknown; maxShare: unknown; switchLoss: unknown }[] }) =>
        r.routing.length > 0 && r.routing.every((l) => l.load === null && l.entropy === null && l.maxShare === null && l.switchLoss === null);
      const onRecs = raw('guards-on');
      expect(onRecs.filter(nulls).map((r) => r.step)).toEqual([o.injectStep]);
      const offRecs = raw('guards-off');
      expect(offRecs.filter(nulls).map((r) => r.step)).toEqual(offRecs.filter((r) => r.step >= o.injectStep).map((r) => r.step));
      // The other steps keep real distributions (loads summing to 1).
      for (const r of onRecs.filter((x) => !nulls(x))) for (const l of r.routing) expect((l.load as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      // Harm: a dead model (NaN validation loss) against a trained one.
      const [valid, finite] = r.harm.metrics;
      expect(Number.isNaN(valid!.arms[0]!.values[0]!)).toBe(true);
      expect(valid!.comparisons[0]).toMatchObject({ worseIn: 1, gap: Infinity, shown: true });
      expect(finite!.arms.map((a) => a.values[0])).toEqual([o.injectStep - 1, o.steps - 1]);
      // The diagnosis of the three views: the second report's logger, the true unguarded metrics, the guarded run.
      expectDiagnosisAsScenarioSays(r);
      expect(diagnosisOf(r, 'guards off, NaN-filtering logger').ids.sort()).toEqual(['nan-logged-as-zero', 'non-finite']);
      expect(diagnosisOf(r, 'guards off, true metrics').ids.sort()).toEqual(['divergence', 'non-finite']);
      const on = diagnosisOf(r, 'guards on (fix)');
      expect(on.ids).toEqual([]);
      expect(on.notes).toBe(1); // the one skipped step: handled, a note, not a finding
      const text = readFileSync(readme, 'utf8');
      expect(text).toContain('steps without routing statistics (non-finite forward)');
      expect(text).toContain('model.layers.1.router_logits');
      expect(text).toContain('guards off, NaN-filtering logger');
    },
    SCENARIO_TIMEOUT,
  );
});
