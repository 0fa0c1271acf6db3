/**
 * The no-information baselines: the forecasting one against the float64 references of the loss
 * (test/reference/loss-ref.ts) and against the engine itself: a run with model.init.headStd=0
 * predicts exactly 0 (the window mean), so its validation loss before training IS the baseline.
 */
import { describe, expect, it } from 'vitest';
import { classifyBaseline, forecastBaseline, forecastBaselineBatch } from '../../src/diagnose/baseline.ts';
import { diagnoseRun } from '../../src/diagnose/diagnoser.ts';
import { loadData } from '../../src/train/data/index.ts';
import { parseDataConfig } from '../../src/train/data/config.ts';
import { horizonRef, huberLossRef } from '../reference/loss-ref.ts';
import { fixture, DEFAULT_DATA } from './helpers.ts';
import { Rng } from '../../src/util/rng.ts';

function firstValid(name: string): number {
  const v = fixture(name).records.find((r) => r.kind === 'valid' && r.step === 0);
  if (!v) throw new Error(`${name}: no step-0 validation`);
  return v.lossMain;
}

describe('no-information baselines', () => {
  it('classification: ln C', () => {
    expect(classifyBaseline(280).loss).toBeCloseTo(Math.log(280), 12);
    expect(classifyBaseline(2).loss).toBeCloseTo(Math.LN2, 12);
    expect(() => classifyBaseline(1)).toThrow(/numClasses/);
  });

  it('classification: a zero head (uniform logits) starts the engine exactly at ln 280', () => {
    expect(firstValid('zero-head-classify')).toBeCloseTo(Math.log(280), 4);
  });

  it('forecasting, one batch: the masked, horizon-unfolded Huber of predicting 0, mean over heads (float64 reference)', () => {
    const rng = new Rng(7);
    const B = 3;
    const T = 10;
    const labels = Float64Array.from({ length: B * T }, () => (rng.next() - 0.5) * 8); // some |r| > delta
    const mask = Float64Array.from({ length: B * T }, (_, i) => (i >= 2 * T ? 0 : 1)); // a padding row
    const horizons = [1, 4, 12];
    for (const delta of [2, 0.5]) {
      const want =
        horizons
          .map((h) => {
            const { target, mask: m } = horizonRef(labels, mask, B, T, h);
            return huberLossRef(new Float64Array(target.length), target, m, delta).loss;
          })
          .reduce((a, b) => a + b, 0) / horizons.length;
      expect(forecastBaselineBatch({ labels, mask, B, T }, horizons, delta)).toBeCloseTo(want, 12);
    }
  });

  it("forecasting: over the default run's validation batches it equals the engine's step-0 loss with a zero head", async () => {
    const cfg = parseDataConfig(DEFAULT_DATA);
    const data = await loadData(cfg, { cwd: process.cwd(), seed: 0 });
    // evaluate(): data.valid.batches(microBatch 16), at most logging.validBatches 16 of them.
    const batches = [...data.valid.batches(16)].slice(0, 16);
    const b = forecastBaseline(batches, [1, 8, 32], 2);
    expect(b.kind).toBe('predict-window-mean');
    expect(b.how).toMatch(/over 108 validation windows in 7 batches/);
    const engine = firstValid('zero-head-forecast');
    expect(Math.abs(b.loss - engine) / engine).toBeLessThan(1e-5); // float32 on the GPU vs float64 here
    // The default run's untrained model (head std 0.02) starts 6% above it: no bad start.
    const initial = firstValid('default-small-moe');
    expect(initial / b.loss).toBeGreaterThan(1);
    expect(initial / b.loss).toBeLessThan(1.1);
    const f = fixture('default-small-moe');
    expect(diagnoseRun({ ...f.header, baseline: b }, f.records).findings).toEqual([]);
  });

  it('refuses what it cannot compute', () => {
    expect(() => forecastBaseline([], [1])).toThrow(/no batches/);
    expect(() => forecastBaseline([{ labels: [0], mask: [1], B: 1, T: 1 }], [])).toThrow(/no horizons/);
    expect(() => forecastBaselineBatch({ labels: [0], mask: [1], B: 2, T: 1 }, [1], 2)).toThrow(/fewer than B\*T/);
  });
});
