// router-init and pooled-vs-per-layer share one run (the std 1.0 failure), so they share a file:
// the runner reuses a run with the same config within one process.
import { describe, expect, it } from 'vitest';
import { pooledVsPerLayer, routerInit } from '../../experiments/scenarios.ts';
import { scratch } from '../train/cli-helpers.ts';
import { SCENARIO_TIMEOUT, runFast } from './helpers.ts';

const root = scratch();

describe('experiment router-init (fast)', () => {
  it(
    'router std 1.0 collapses the routing from step 1; std 0.006 keeps it near-uniform',
    async () => {
      const { outcome: o } = await runFast(routerInit, root);
      const { bad, good } = o.runs;
      const ln4 = Math.log(4);
      // Failure: entropy far below ln 4 in layer 0 from the first step, one expert in every token's top-2.
      expect(bad.entropyFirst[0]).toBeLessThan(0.3 * ln4);
      expect(bad.entropyLast[0]).toBeLessThan(0.3 * ln4);
      expect(bad.layer0LowEntropyFraction).toBeGreaterThan(0.9);
      expect(good.layer0LowEntropyFraction).toBe(0);
      // Fix: near-uniform probabilities throughout.
      for (const e of [...good.entropyFirst, ...good.entropyLast]) expect(e).toBeGreaterThan(0.95 * ln4);
    },
    SCENARIO_TIMEOUT,
  );
});

describe('experiment pooled-vs-per-layer (fast)', () => {
  it(
    "the pooled aux reads near k while a layer's own Switch loss shows collapse",
    async () => {
      const { outcome: o, runs } = await runFast(pooledVsPerLayer, root);
      expect(runs[0]!.reused).toBeDefined();
      expect(o.hiddenSteps.length).toBeGreaterThan(0);
      expect(Math.abs(o.worst.aux - o.k) / o.k).toBeLessThanOrEqual(0.15);
      expect(Math.max(...o.worst.switchLoss)).toBeGreaterThan(1.5);
    },
    SCENARIO_TIMEOUT,
  );
});
