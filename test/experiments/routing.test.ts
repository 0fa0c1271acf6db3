// router-init and pooled-vs-per-layer: the two routing scenarios with router std 1.0 (router-init on
// a base with no shared expert and a capacity limit, pooled-vs-per-layer on small-moe as it ships).
import { describe, expect, it } from 'vitest';
import { pooledVsPerLayer, routerInit } from '../../experiments/scenarios.ts';
import { scratch } from '../train/cli-helpers.ts';
import { SCENARIO_TIMEOUT, diagnosisOf, expectDiagnosisAsScenarioSays, runFast } from './helpers.ts';

const root = scratch();

describe('experiment router-init (fast)', () => {
  it(
    'router std 1.0 collapses the routing from step 1; std 0.006 keeps it near-uniform',
    async () => {
      const r = await runFast(routerInit, root);
      const o = r.outcome;
      const { bad, good } = o.runs;
      const ln4 = Math.log(4);
      // Failure: entropy far below ln 4 in layer 0 from the first step, one expert in every token's top-2.
      expect(bad.entropyFirst[0]).toBeLessThan(0.3 * ln4);
      expect(bad.entropyLast[0]).toBeLessThan(0.3 * ln4);
      expect(bad.layer0LowEntropyFraction).toBeGreaterThan(0.9);
      expect(good.layer0LowEntropyFraction).toBe(0);
      // Fix: near-uniform probabilities throughout.
      for (const e of [...good.entropyFirst, ...good.entropyLast]) expect(e).toBeGreaterThan(0.95 * ln4);
      // The diagnosis: both layers saturated from step 1 (and the pooled aux hides it); the fix is clean.
      expectDiagnosisAsScenarioSays(r);
      expect(diagnosisOf(r, 'router std 1.0 (failure)').ids.sort()).toEqual([
        'pooled-aux-hides-imbalance',
        'router-saturated@layer0',
        'router-saturated@layer1',
      ]);
      expect(diagnosisOf(r, 'router std 0.006 (fix)').ids).toEqual([]);
    },
    SCENARIO_TIMEOUT,
  );
});

describe('experiment pooled-vs-per-layer (fast)', () => {
  it(
    "the pooled aux reads near k while a layer's own Switch loss shows collapse",
    async () => {
      const r = await runFast(pooledVsPerLayer, root);
      const { outcome: o, runs } = r;
      expect(runs[0]!.reused).toBeUndefined();
      expect(o.hiddenSteps.length).toBeGreaterThan(0);
      expect(Math.abs(o.worst.aux - o.k) / o.k).toBeLessThanOrEqual(0.15);
      expect(Math.max(...o.worst.switchLoss)).toBeGreaterThan(1.5);
      // The diagnosis names the pooled reading itself; with no fix arm there is no harm comparison.
      expectDiagnosisAsScenarioSays(r);
      expect(diagnosisOf(r, 'router std 1.0, pooled aux 0.02').kinds).toContain('pooled-aux-hides-imbalance');
      expect(r.harm.metrics).toEqual([]);
    },
    SCENARIO_TIMEOUT,
  );
});
