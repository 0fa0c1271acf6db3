/**
 * Seeded synthetic series for scale tests: level + trend + seasonality + Gaussian noise, plus
 * injected spikes with their 0/1 labels. Spikes draw from a second Rng stream so the clean signal
 * of a seed is the same whatever the anomaly settings (tests compare the two).
 */
import { Rng } from '../../util/rng.ts';
import type { SyntheticClassesSource, SyntheticSource } from './config.ts';
import type { Series } from './series.ts';

export type SyntheticOptions = Omit<SyntheticSource, 'kind'>;

/** A second, decorrelated seed for the spike stream. */
function spikeSeed(seed: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
}

export function generateSynthetic(opts: SyntheticOptions): Series[] {
  const signal = new Rng(opts.seed);
  const spikes = new Rng(spikeSeed(opts.seed));
  const out: Series[] = [];
  for (let s = 0; s < opts.series; s++) {
    // Per-series variety: level, slope factor and sign, amplitude factor and phase per season.
    const level = signal.uniform(-2, 2);
    const slope = opts.trend * signal.uniform(0.5, 1.5) * (signal.next() < 0.5 ? -1 : 1);
    const seasons = opts.seasonality.map((k) => ({
      w: (2 * Math.PI) / k.period,
      a: k.amplitude * signal.uniform(0.5, 1.5),
      phase: signal.uniform(0, 2 * Math.PI),
    }));
    const values = new Float64Array(opts.length);
    const anomalies = new Uint8Array(opts.length);
    for (let t = 0; t < opts.length; t++) {
      let v = level + slope * t;
      for (const k of seasons) v += k.a * Math.sin(k.w * t + k.phase);
      if (opts.noise > 0) v += opts.noise * signal.normal();
      // One draw per point whatever the outcome, so spike positions depend on the seed and rate only.
      if (spikes.next() < opts.anomalies.rate) {
        v += (spikes.next() < 0.5 ? -1 : 1) * opts.anomalies.magnitude;
        anomalies[t] = 1;
      }
      values[t] = v;
    }
    out.push({ id: `synthetic[${s}]`, values, anomalies });
  }
  return out;
}

/**
 * Classification series (see SyntheticClassesSource): each series is two noisy instances of its
 * class pattern, each contextLength + 1 points long and starting at phase 0 of the pattern.
 */
export function generateClasses(opts: Omit<SyntheticClassesSource, 'kind'>, contextLength: number): Series[] {
  const rng = new Rng(opts.seed);
  const n = contextLength + 1;
  const out: Series[] = [];
  for (let c = 0; c < opts.classes; c++) {
    const cycles = 1 + (c % 20) / 2;
    const phase = (2 * Math.PI * Math.floor(c / 20)) / 14;
    for (let s = 0; s < opts.seriesPerClass; s++) {
      const values = new Float64Array(2 * n);
      for (let i = 0; i < 2 * n; i++) {
        const t = i % n;
        values[i] = Math.sin((2 * Math.PI * cycles * t) / contextLength + phase) + opts.noise * rng.normal();
      }
      out.push({ id: `class ${c} #${s}`, values, classLabel: c });
    }
  }
  return out;
}
