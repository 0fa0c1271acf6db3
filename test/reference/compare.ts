/**
 * Comparing GPU results with float64 references. NaN or Inf in the actual values always
 * fails (unless the reference has the same non-finite value at that index), so a kernel
 * that leaves poisoned outputs untouched can never pass.
 */
import { expect } from 'vitest';

export interface CloseOptions {
  /** Max allowed |a - e| / (|e|_scale + atol) per element. */
  rtol: number;
  /** Absolute floor, for elements whose reference is ~0. */
  atol?: number;
  /** Scale relative errors by the max |expected| of the whole tensor instead of per element. */
  relativeToMax?: boolean;
  what?: string;
  seed?: number;
}

export interface CloseReport {
  maxRelErr: number;
  worstIndex: number;
  nonFinite: number;
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): CloseReport {
  if (actual.length !== expected.length) throw new Error(`${opts.what ?? 'result'}: length ${actual.length} != expected ${expected.length}`);
  const atol = opts.atol ?? 0;
  let maxAbsExp = 0;
  for (let i = 0; i < expected.length; i++) maxAbsExp = Math.max(maxAbsExp, Math.abs(expected[i]!));
  let maxRelErr = 0;
  let worstIndex = -1;
  let nonFinite = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!Number.isFinite(a)) {
      if (Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e))) continue;
      nonFinite++;
      if (worstIndex < 0 || maxRelErr !== Infinity) {
        maxRelErr = Infinity;
        worstIndex = i;
      }
      continue;
    }
    const scale = (opts.relativeToMax ? maxAbsExp : Math.abs(e)) + atol;
    const err = scale === 0 ? Math.abs(a - e) : Math.abs(a - e) / scale;
    if (err > maxRelErr) {
      maxRelErr = err;
      worstIndex = i;
    }
  }
  return { maxRelErr, worstIndex, nonFinite };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): CloseReport {
  const r = compareArrays(actual, expected, opts);
  const ok = r.nonFinite === 0 && r.maxRelErr <= opts.rtol;
  if (!ok) {
    const i = r.worstIndex;
    const msg =
      `${opts.what ?? 'result'} mismatch${opts.seed !== undefined ? ` (seed ${opts.seed}; rerun with TEST_SEED=${opts.seed})` : ''}: ` +
      `max rel err ${r.maxRelErr.toExponential(3)} > rtol ${opts.rtol} at [${i}] actual=${actual[i]} expected=${expected[i]}` +
      (r.nonFinite ? `; ${r.nonFinite} non-finite values` : '');
    expect.fail(msg);
  }
  return r;
}

/** Assert every value is finite. */
export function expectFinite(a: ArrayLike<number>, what = 'result'): void {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) expect.fail(`${what}[${i}] = ${a[i]} is not finite`);
}
