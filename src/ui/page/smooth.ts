/**
 * TensorBoard's scalar smoothing: an exponential moving average, debiased so the first points are
 * not pulled towards 0 (tensorboard/plugins/scalar/vz_line_chart2). Weight 0 is the raw line,
 * 0.99 nearly flat. A non-finite point stays a gap (its marker is drawn as before) and does not
 * enter the average; a point the series does not have (undefined) stays undefined.
 */
export const MAX_SMOOTHING = 0.99;

export function ema(values: readonly (number | null | undefined)[], weight: number): (number | null | undefined)[] {
  const w = Math.min(MAX_SMOOTHING, Math.max(0, weight));
  if (w === 0) return values.slice();
  const out: (number | null | undefined)[] = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === undefined || v === null || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}
