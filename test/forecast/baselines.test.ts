/**
 * Baselines, season detection, error metrics and the (de)normalisation of forecasts against
 * float64 references written out here loop by loop. Exact equality where the arithmetic is the
 * same; 1e-12 relative where summation order differs.
 */
import { describe, it, expect } from 'vitest';
import { autocorrelation, detectSeason, detrend, drift, naive, seasonalNaive, windowMean } from '../../src/forecast/baselines.ts';
import { ErrorAccumulator } from '../../src/forecast/metrics.ts';
import { denormalise, normalise, windowStats } from '../../src/forecast/data.ts';
import { generationPlan, headFor } from '../../src/forecast/generate.ts';
import { NORM_EPS } from '../../src/train/data/index.ts';
import { Rng } from '../reference/rng.ts';

function series(n: number, f: (t: number) => number): Float64Array {
  return Float64Array.from({ length: n }, (_, t) => f(t));
}

describe('baselines (float64)', () => {
  const rng = new Rng(7);
  const ctx = series(20, () => rng.normal() * 3 + 10);

  it('naive repeats the last value', () => {
    expect(Array.from(naive(ctx, 5))).toEqual(Array(5).fill(ctx[19]));
  });

  it('seasonal naive repeats the last full season, for horizons past one season', () => {
    const m = 6;
    const f = seasonalNaive(ctx, 14, m);
    for (let k = 1; k <= 14; k++) {
      // Reference: walk back whole periods from the target index until inside the context.
      let i = 19 + k;
      while (i > 19) i -= m;
      expect(f[k - 1], `step ${k}`).toBe(ctx[i]);
    }
    // On a series that is exactly periodic the forecast is exact.
    const p = series(30, (t) => [1, 4, 2, 8, 5][t % 5]!);
    expect(Array.from(seasonalNaive(p.subarray(0, 20), 10, 5))).toEqual(Array.from(p.subarray(20, 30)));
    expect(Array.from(seasonalNaive(ctx, 3, 1))).toEqual(Array.from(naive(ctx, 3)));
    expect(() => seasonalNaive(ctx, 3, 21)).toThrow(/1\.\.20/);
    expect(() => seasonalNaive(ctx, 3, 0)).toThrow();
  });

  it('drift extends the line through the first and last points; exact on a line', () => {
    const line = series(30, (t) => 2.5 - 0.75 * t);
    const f = drift(line.subarray(0, 20), 10);
    for (let k = 0; k < 10; k++) expect(f[k]).toBeCloseTo(line[20 + k]!, 12);
    const d = drift(ctx, 4);
    const slope = (ctx[19]! - ctx[0]!) / 19;
    for (let k = 1; k <= 4; k++) expect(d[k - 1]).toBe(ctx[19]! + k * slope);
  });

  it('window mean is the mean of the context', () => {
    let s = 0;
    for (const v of ctx) s += v;
    expect(Array.from(windowMean(ctx, 3))).toEqual([s / 20, s / 20, s / 20]);
  });
});

describe('season detection', () => {
  it('autocorrelation matches the textbook formula', () => {
    const rng = new Rng(3);
    const x = series(50, () => rng.normal());
    const acf = autocorrelation(x, 5);
    const mean = x.reduce((a, b) => a + b, 0) / 50;
    const c0 = x.reduce((a, v) => a + (v - mean) ** 2, 0);
    for (let l = 0; l <= 5; l++) {
      let c = 0;
      for (let i = 0; i + l < 50; i++) c += (x[i]! - mean) * (x[i + l]! - mean);
      expect(acf[l]).toBeCloseTo(c / c0, 12);
    }
    expect(Array.from(autocorrelation(new Float64Array(10).fill(3), 3))).toEqual([0, 0, 0, 0]);
  });

  it('detrend removes the least-squares line (exactly zero residuals on a line)', () => {
    const r = detrend(series(30, (t) => 4 - 0.5 * t));
    for (const v of r) expect(Math.abs(v)).toBeLessThan(1e-12);
    const rng = new Rng(2);
    const y = series(40, () => rng.normal());
    const d = detrend(y);
    // Residuals of least squares are orthogonal to 1 and t.
    expect(Math.abs(d.reduce((a, v) => a + v, 0))).toBeLessThan(1e-10);
    expect(Math.abs(d.reduce((a, v, t) => a + v * t, 0))).toBeLessThan(1e-8);
  });

  it('finds the period of a noisy seasonal series with a trend, and none in a random walk or noise', () => {
    const rng = new Rng(11);
    expect(
      detectSeason(
        series(2000, (t) => 0.01 * t + Math.sin((2 * Math.PI * t) / 24) + 0.1 * rng.normal()),
        64,
      ).period,
    ).toBe(24);
    expect(
      detectSeason(
        series(2000, (t) => Math.sin((2 * Math.PI * t) / 7) + 0.2 * rng.normal()),
        64,
      ).period,
    ).toBe(7);
    // A weak season in a short series (amplitude 0.3, noise 0.1, 270 points).
    expect(
      detectSeason(
        series(270, (t) => 0.3 * Math.sin((2 * Math.PI * t) / 24 + 1) + 0.1 * rng.normal()),
        24,
      ).period,
    ).toBe(24);
    let w = 0;
    expect(
      detectSeason(
        series(2000, () => (w += rng.normal())),
        64,
      ).period,
    ).toBeNull();
    expect(
      detectSeason(
        series(2000, () => rng.normal()),
        64,
      ).period,
    ).toBeNull();
    expect(detectSeason(new Float64Array(3), 64).period).toBeNull();
  });
});

describe('error metrics', () => {
  it('MSE / MAE per step and averaged over steps 1..h, original and normalised', () => {
    const acc = new ErrorAccumulator(3);
    const windows = [
      { f: [1, 2, 3], a: [1.5, 1, 5], s: 2 },
      { f: [0, 0, 0], a: [1, -1, 3], s: 0.5 },
    ];
    for (const w of windows) acc.add(w.f, w.a, w.s);
    expect(acc.windows).toBe(2);
    const ref = (k: number, sq: boolean, norm: boolean) =>
      windows.reduce((t, w) => t + (sq ? ((w.f[k]! - w.a[k]!) / (norm ? w.s : 1)) ** 2 : Math.abs(w.f[k]! - w.a[k]!) / (norm ? w.s : 1)), 0) / 2;
    const step = acc.perStep('original');
    const stepN = acc.perStep('normalised');
    for (let k = 0; k < 3; k++) {
      expect(step.mse[k]).toBeCloseTo(ref(k, true, false), 12);
      expect(step.mae[k]).toBeCloseTo(ref(k, false, false), 12);
      expect(stepN.mse[k]).toBeCloseTo(ref(k, true, true), 12);
      expect(stepN.mae[k]).toBeCloseTo(ref(k, false, true), 12);
    }
    const at = acc.atHorizons('original', [1, 3]);
    expect(at.mse[0]).toBeCloseTo(ref(0, true, false), 12);
    expect(at.mse[1]).toBeCloseTo((ref(0, true, false) + ref(1, true, false) + ref(2, true, false)) / 3, 12);
  });

  it('a NaN forecast gives NaN metrics, never a number', () => {
    const acc = new ErrorAccumulator(2);
    acc.add([1, NaN], [1, 1], 1);
    expect(acc.perStep('original').mse[0]).toBe(0);
    expect(acc.perStep('original').mse[1]).toBeNaN();
    expect(acc.atHorizons('normalised', [2]).mae[0]).toBeNaN();
  });
});

describe('normalisation of contexts and de-normalisation of forecasts', () => {
  it('window mode: the context statistics of training, undone exactly in float64', () => {
    const rng = new Rng(5);
    const x = series(40, () => 20 + 0.3 * rng.normal());
    const s = windowStats('window', x, 10, 30, { mean: 0, std: 0 });
    let mean = 0;
    for (let i = 10; i < 30; i++) mean += x[i]!;
    mean /= 20;
    let ss = 0;
    for (let i = 10; i < 30; i++) ss += (x[i]! - mean) ** 2;
    expect(s.mean).toBeCloseTo(mean, 12);
    expect(s.scale).toBeCloseTo(Math.sqrt(ss / 20) + NORM_EPS, 12);
    const n = normalise(x, 10, 30, s);
    for (let i = 0; i < 20; i++) expect(n[i]).toBe(Math.fround((x[10 + i]! - s.mean) * (1 / s.scale)));
    // A prediction in normalised units goes back as p * scale + mean, in float64.
    const back = denormalise(Float32Array.from([0, 1, -2.5]), s);
    expect(Array.from(back)).toEqual([s.mean, s.scale + s.mean, -2.5 * s.scale + s.mean]);
    // Round trip of the context itself, to float32 precision of the normalised values.
    const rt = denormalise(n, s);
    for (let i = 0; i < 20; i++) expect(Math.abs(rt[i]! - x[10 + i]!)).toBeLessThan(2e-7 * s.scale * 8);
  });

  it('a constant window maps to zeros and back (scale 1); series and none modes', () => {
    const x = new Float64Array(10).fill(4.25);
    const s = windowStats('window', x, 0, 10, { mean: 0, std: 0 });
    expect(s).toEqual({ mean: 4.25, scale: 1 });
    expect(Array.from(normalise(x, 0, 10, s))).toEqual(Array(10).fill(0));
    expect(windowStats('none', x, 0, 10, { mean: 3, std: 2 })).toEqual({ mean: 0, scale: 1 });
    expect(windowStats('series', x, 0, 10, { mean: 3, std: 2 })).toEqual({ mean: 3, scale: 2 + NORM_EPS });
  });
});

describe("heads run by an autoregressive forecast (Time-MoE's rule)", () => {
  it('largest head not longer than what is left; the first head, cut, when all are longer', () => {
    expect(headFor([1, 8, 32], 32)).toEqual({ index: 2, take: 32 });
    expect(headFor([1, 8, 32], 31)).toEqual({ index: 1, take: 8 });
    expect(headFor([1, 8, 32], 7)).toEqual({ index: 0, take: 1 });
    expect(headFor([4, 8], 3)).toEqual({ index: 0, take: 3 });
    expect(generationPlan([1, 8, 32], 64)).toEqual([32, 32]);
    expect(generationPlan([1, 8, 32], 45)).toEqual([32, 8, 1, 1, 1, 1, 1]);
    expect(generationPlan([1, 3, 5], 9)).toEqual([5, 3, 1]);
  });
});
