/**
 * Cleaning before windowing. NaN/Inf in a raw series is the classic source of `loss nan` (docs/DESIGN.md
 * §5, §7.4): every non-finite point is counted and then repaired, or its series dropped, or the
 * run refused, per config. Series too short for one window are dropped; constant ones are kept
 * but flagged (window normalisation divides by 1 there, see windows.ts).
 */
import type { DataConfig } from './config.ts';
import { DataError } from './errors.ts';
import type { Series } from './series.ts';

/** Values beyond float32 range would turn into Inf when windows are written as Float32Array. */
const F32_MAX = 3.4028234663852886e38;
const isUsable = (v: number) => Number.isFinite(v) && Math.abs(v) <= F32_MAX;

export interface CleanSeries extends Series {
  /** Standard deviation 0: every point equal. */
  constant: boolean;
}

export interface CleanReport {
  seriesIn: number;
  seriesOut: number;
  /** NaN, ±Inf or beyond-float32 points seen in all input series. */
  nonFinitePoints: number;
  /** Points filled by interpolation. */
  repairedPoints: number;
  /** Series that held non-finite points and were dropped (nonFinite: 'drop-series', or nothing finite left to interpolate from). */
  droppedNonFinite: number;
  /** Series with no points at all. */
  droppedEmpty: number;
  /** Series shorter than max(minLength, contextLength + 1). */
  droppedShort: number;
  /** Constant series kept (flagged). */
  constantSeries: number;
  /** Up to 20 human-readable lines naming the series behind the counts. */
  details: string[];
}

export interface CleanOptions {
  nonFinite: DataConfig['nonFinite'];
  /** Shortest series kept (effectiveMinLength of the config). */
  minLength: number;
}

/**
 * Fill non-usable points linearly between their usable neighbours; edge gaps take the nearest
 * usable value. Returns the number of points filled (the array must hold at least one usable point).
 */
export function interpolateGaps(x: Float64Array): number {
  let prev = -1;
  let filled = 0;
  for (let i = 0; i <= x.length; i++) {
    if (i < x.length && !isUsable(x[i]!)) continue;
    const gap = i - prev - 1;
    if (gap > 0) {
      filled += gap;
      for (let j = prev + 1; j < i; j++) {
        if (prev < 0) x[j] = x[i]!;
        else if (i === x.length) x[j] = x[prev]!;
        else x[j] = x[prev]! + ((x[i]! - x[prev]!) * (j - prev)) / (i - prev);
      }
    }
    prev = i;
  }
  return filled;
}

function isConstant(x: Float64Array): boolean {
  for (let i = 1; i < x.length; i++) if (x[i] !== x[0]) return false;
  return true;
}

export function cleanSeries(input: readonly Series[], opts: CleanOptions): { series: CleanSeries[]; report: CleanReport } {
  const report: CleanReport = {
    seriesIn: input.length,
    seriesOut: 0,
    nonFinitePoints: 0,
    repairedPoints: 0,
    droppedNonFinite: 0,
    droppedEmpty: 0,
    droppedShort: 0,
    constantSeries: 0,
    details: [],
  };
  const note = (s: string) => {
    if (report.details.length < 20) report.details.push(s);
  };
  const out: CleanSeries[] = [];
  for (const s of input) {
    if (s.values.length === 0) {
      report.droppedEmpty++;
      note(`${s.id}: empty, dropped`);
      continue;
    }
    let bad = 0;
    let firstBad = -1;
    for (let i = 0; i < s.values.length; i++) {
      if (!isUsable(s.values[i]!)) {
        if (bad++ === 0) firstBad = i;
      }
    }
    report.nonFinitePoints += bad;
    let values = s.values;
    if (bad > 0) {
      if (opts.nonFinite === 'error') {
        throw new DataError(
          `series ${s.id} has ${bad} NaN/Inf point(s) (first at index ${firstBad}, value ${s.values[firstBad]}): clean the data, or set data.nonFinite to "interpolate" or "drop-series"`,
        );
      }
      if (opts.nonFinite === 'drop-series' || bad === s.values.length) {
        report.droppedNonFinite++;
        note(`${s.id}: ${bad} of ${s.values.length} points NaN/Inf, dropped`);
        continue;
      }
      values = Float64Array.from(s.values); // never modify the loader's arrays in place
      report.repairedPoints += interpolateGaps(values);
      note(`${s.id}: ${bad} NaN/Inf point(s) interpolated (first at index ${firstBad})`);
    }
    if (values.length < opts.minLength) {
      report.droppedShort++;
      note(`${s.id}: ${values.length} points < ${opts.minLength} needed, dropped`);
      continue;
    }
    const constant = isConstant(values);
    if (constant) {
      report.constantSeries++;
      note(`${s.id}: constant (${values[0]}), kept; its windows normalise to zeros`);
    }
    out.push({ ...s, values, constant });
  }
  report.seriesOut = out.length;
  return { series: out, report };
}
