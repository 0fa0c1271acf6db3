/**
 * Forecast errors per step ahead, in two scales: the series' original units, and normalised by
 * each window's scale (error / scale, the scale the model was trained on, so windows of series of
 * different size weigh alike). "MSE at horizon h" is the mean over every window and steps 1..h,
 * as Time-MoE reports a prediction length; per-step values are kept too.
 */

export type Scale = 'normalised' | 'original';

export interface ErrorSummary {
  mse: number[];
  mae: number[];
}

export class ErrorAccumulator {
  private readonly se: Record<Scale, Float64Array>;
  private readonly ae: Record<Scale, Float64Array>;
  private readonly count: Float64Array;

  constructor(readonly horizon: number) {
    this.se = { normalised: new Float64Array(horizon), original: new Float64Array(horizon) };
    this.ae = { normalised: new Float64Array(horizon), original: new Float64Array(horizon) };
    this.count = new Float64Array(horizon);
  }

  /** One window: forecast and actual (original units, length horizon) and the window's scale. */
  add(forecast: ArrayLike<number>, actual: ArrayLike<number>, scale: number): void {
    for (let k = 0; k < this.horizon; k++) {
      // NaN forecasts stay NaN in the sums: a broken model must not read as a good one.
      const e = forecast[k]! - actual[k]!;
      const n = e / scale;
      this.se.original[k]! += e * e;
      this.ae.original[k]! += Math.abs(e);
      this.se.normalised[k]! += n * n;
      this.ae.normalised[k]! += Math.abs(n);
      this.count[k]!++;
    }
  }

  get windows(): number {
    return this.count[0] ?? 0;
  }

  /** Mean over windows at each step 1..H. */
  perStep(scale: Scale): ErrorSummary {
    const c = this.count;
    return { mse: Array.from(this.se[scale], (v, k) => v / c[k]!), mae: Array.from(this.ae[scale], (v, k) => v / c[k]!) };
  }

  /** Mean over windows and steps 1..h, for each h of `horizons`. */
  atHorizons(scale: Scale, horizons: readonly number[]): ErrorSummary {
    const cum = (a: Float64Array) =>
      horizons.map((h) => {
        let s = 0;
        let n = 0;
        for (let k = 0; k < h; k++) {
          s += a[k]!;
          n += this.count[k]!;
        }
        return s / n;
      });
    return { mse: cum(this.se[scale]), mae: cum(this.ae[scale]) };
  }
}
