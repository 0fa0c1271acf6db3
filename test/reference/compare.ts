/**
 * Comparing GPU results with float64 references: the one comparison helper of the suite.
 *
 * NaN or Inf on EITHER side fails, unless the test declares that position expected non-finite
 * (`nonFiniteAt`); there the actual value must be the same non-finite value (NaN matches NaN,
 * +Inf only +Inf). So a kernel that leaves a NaN-poisoned output untouched fails, and so does a
 * reference that went NaN: its error would be NaN, and NaN compares false with any bound. With
 * `relativeToMax` the scale is the largest finite |expected|, so one declared non-finite entry
 * cannot void the comparison of the others. Its self-test is test/reference/compare.test.ts.
 *
 * TEST_MEASURE=<file> appends each comparison's worst error as a JSON line (test, what, err,
 * rtol): how the tolerances in the tests were measured (the comments next to them name it).
 */
import { appendFileSync } from 'node:fs';
import { expect } from 'vitest';

export interface CloseOptions {
  /** Max allowed |a - e| / (scale + atol) per element, scale = |e| (or max |e| with relativeToMax). */
  rtol: number;
  /** Absolute floor, for elements whose reference is ~0. */
  atol?: number;
  /** Scale relative errors by the max finite |expected| of the whole tensor instead of per element. */
  relativeToMax?: boolean;
  /**
   * Positions where the reference is non-finite on purpose (e.g. the mean over no elements):
   * there the actual value must be the identical non-finite value. Anywhere else a non-finite
   * value on either side fails.
   */
  nonFiniteAt?: readonly number[] | ((i: number) => boolean);
  what?: string;
  seed?: number;
}

export interface CloseReport {
  /** Worst error over the finite positions (Infinity when a non-finite value failed). */
  maxRelErr: number;
  /** Where the worst error is; the first failing non-finite position if there is one. */
  worstIndex: number;
  /** Positions that failed for a non-finite value (undeclared on either side, or a declared one that differs). */
  nonFinite: number;
  /** Elements compared. */
  compared: number;
}

function declaredSet(n: number, at: CloseOptions['nonFiniteAt']): (i: number) => boolean {
  if (!at) return () => false;
  if (typeof at === 'function') return at;
  for (const i of at) if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`nonFiniteAt: index ${i} is outside [0, ${n})`);
  const s = new Set(at);
  return (i) => s.has(i);
}

function sameNonFinite(a: number, e: number): boolean {
  return (Number.isNaN(a) && Number.isNaN(e)) || (a === e && !Number.isFinite(e));
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): CloseReport {
  if (actual.length !== expected.length) throw new Error(`${opts.what ?? 'result'}: length ${actual.length} != expected ${expected.length}`);
  const declared = declaredSet(expected.length, opts.nonFiniteAt);
  const atol = opts.atol ?? 0;
  let maxAbsExp = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    if (Number.isFinite(e)) maxAbsExp = Math.max(maxAbsExp, Math.abs(e));
  }
  let maxRelErr = 0;
  let worstIndex = -1;
  let nonFinite = 0;
  let firstBad = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (declared(i)) {
      // A declared position passes only on the identical non-finite value.
      if (!(!Number.isFinite(e) && sameNonFinite(a, e))) {
        nonFinite++;
        if (firstBad < 0) firstBad = i;
      }
      continue;
    }
    if (!Number.isFinite(a) || !Number.isFinite(e)) {
      nonFinite++;
      if (firstBad < 0) firstBad = i;
      continue;
    }
    const scale = (opts.relativeToMax ? maxAbsExp : Math.abs(e)) + atol;
    const err = scale === 0 ? Math.abs(a - e) : Math.abs(a - e) / scale;
    if (err > maxRelErr) {
      maxRelErr = err;
      worstIndex = i;
    }
  }
  if (firstBad >= 0) return { maxRelErr: Infinity, worstIndex: firstBad, nonFinite, compared: actual.length };
  return { maxRelErr, worstIndex, nonFinite, compared: actual.length };
}

function record(opts: CloseOptions, r: CloseReport): void {
  const file = process.env.TEST_MEASURE;
  if (!file) return;
  const st = expect.getState();
  const line = {
    file: st.testPath?.replace(/^.*?\/test\//, 'test/'),
    test: st.currentTestName,
    what: opts.what ?? 'result',
    err: r.maxRelErr,
    rtol: opts.rtol,
    n: r.compared,
    seed: opts.seed,
  };
  appendFileSync(file, JSON.stringify(line) + '\n');
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): CloseReport {
  const r = compareArrays(actual, expected, opts);
  record(opts, r);
  // An empty comparison checks nothing: a test that compares no element cannot fail.
  const ok = r.compared > 0 && r.nonFinite === 0 && r.maxRelErr <= opts.rtol;
  if (!ok) {
    const i = r.worstIndex;
    const where = opts.seed !== undefined ? ` (seed ${opts.seed}; rerun with TEST_SEED=${opts.seed})` : '';
    const msg =
      r.compared === 0
        ? `${opts.what ?? 'result'}: nothing to compare (both arrays are empty)`
        : `${opts.what ?? 'result'} mismatch${where}: ` +
          (r.nonFinite
            ? `${r.nonFinite} non-finite value(s) not declared expected (nonFiniteAt), first at [${i}] actual=${actual[i]} expected=${expected[i]}`
            : `max rel err ${r.maxRelErr.toExponential(3)} > rtol ${opts.rtol} at [${i}] actual=${actual[i]} expected=${expected[i]}`);
    expect.fail(msg);
  }
  return r;
}

/** Assert every value is finite. */
export function expectFinite(a: ArrayLike<number>, what = 'result'): void {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) expect.fail(`${what}[${i}] = ${a[i]} is not finite`);
}

/** rms(a - e) / rms(e): the whole tensor's error, far steadier over seeds than its largest element; NaN anywhere makes it NaN, which no bound passes. */
export function relRms(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let s = 0;
  let r = 0;
  for (let i = 0; i < e.length; i++) {
    s += (a[i]! - e[i]!) ** 2;
    r += e[i]! ** 2;
  }
  return Math.sqrt(s / r);
}
