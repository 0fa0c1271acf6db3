/**
 * Benchmark harness shared by every bench/*.bench.ts suite.
 *
 * A suite module exports `run(ctx): Promise<SuiteResult | SuiteResult[]>`; bench/run.js
 * imports it and writes bench/results/<suite>.json plus bench/results/<suite>.md (one markdown
 * table per SuiteResult). GPU work is timed by recording N iterations into one submit and
 * awaiting the queue (per-dispatch timing would measure the round trip, not the kernel).
 *
 * A timing of a wrong kernel is worthless: timeCase() first runs a case's `check` (its output
 * against a float64 reference, once per shape), and a case whose output is wrong is marked and
 * not timed. Every timing reports the median and the spread (min-max) of its samples, not only
 * the best.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import type { DawnRuntime } from '../src/kernels/runtime.ts';
import { timeRecorded } from '../src/util/time-recorded.ts';

export type Cell = string | number | null;
export type BenchRow = Record<string, Cell>;

export interface SuiteResult {
  /** Becomes the markdown section title; also the JSON key. */
  title: string;
  rows: BenchRow[];
  /** Column order for the markdown table (default: keys of the first row). */
  columns?: string[];
  /** Free-form lines printed under the table. */
  notes?: string[];
}

export interface SuiteContext {
  /** `--quick`: fewer repeats and shapes (CI smoke). */
  quick: boolean;
  log(msg: string): void;
}

export type Suite = (ctx: SuiteContext) => Promise<SuiteResult | SuiteResult[]>;

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

export interface Timing {
  /** Milliseconds per iteration: median, best (min) and worst (max) over the samples. */
  medianMs: number;
  bestMs: number;
  maxMs: number;
  /** Every sample's ms per iteration, in the order taken. */
  samplesMs: number[];
  /** Iterations per sample and number of samples. */
  iters: number;
  samples: number;
}

export interface GpuTimingOptions {
  /** Target duration of one sample (ms); iterations per sample are calibrated to it. */
  sampleMs?: number;
  /** Number of timed samples. */
  samples?: number;
  /** Cap on iterations per sample. */
  maxIters?: number;
}

/**
 * Time `record` (which records GPU work, no waiting) by submitting batches of iterations and
 * awaiting the queue. The first call compiles pipelines and is not timed.
 */
export async function timeGpu(rt: DawnRuntime, record: () => void, opts: GpuTimingOptions = {}): Promise<Timing> {
  const sampleMs = opts.sampleMs ?? 150;
  const samples = opts.samples ?? 5;
  const maxIters = opts.maxIters ?? 1000;
  const { per, iters } = await timeRecorded(rt, record, { samples, sampleMs, maxIters });
  return summarize(per, iters);
}

/** Time an async host-side operation (e.g. a submit round trip or a readback). */
export async function timeAsync(fn: () => Promise<unknown>, opts: { iters?: number; samples?: number } = {}): Promise<Timing> {
  const iters = opts.iters ?? 50;
  const samples = opts.samples ?? 5;
  await fn();
  const per: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await fn();
    per.push((performance.now() - t0) / iters);
  }
  return summarize(per, iters);
}

/** Median (mean of the middle two for an even count), min and max of per-iteration samples. */
export function summarize(per: readonly number[], iters: number): Timing {
  if (per.length === 0) throw new Error('summarize: no samples');
  const sorted = [...per].sort((a, b) => a - b);
  const h = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[h]! : (sorted[h - 1]! + sorted[h]!) / 2;
  return { medianMs, bestMs: sorted[0]!, maxMs: sorted[sorted.length - 1]!, samplesMs: [...per], iters, samples: per.length };
}

/** The spread of a timing's samples as "min-max" ms: how far to trust its median. */
export function spread(t: Timing, digits = 3): string {
  return `${round(t.bestMs, digits)}–${round(t.maxMs, digits)}`;
}

/** The standard timing cells of a row: median and spread (null when the case was not timed). */
export function timingCells(t: Timing | null, digits = 3): BenchRow {
  return { 'median ms': t ? round(t.medianMs, digits) : null, 'min–max ms': t ? spread(t, digits) : null };
}

// ------------------------------------------------------------------------------- output checks

/** What a case's check found: ok, the worst error relative to its bound, and a cell for the row. */
export interface CheckOutcome {
  ok: boolean;
  /** Worst error divided by the allowed error (ok means <= 1); Infinity for NaN, Inf or a length mismatch. */
  worst: number;
  /** For the row's `check` column: `ok (0.02 of bound)` or `WRONG (...)`. */
  text: string;
}

function outcome(worst: number, what: string): CheckOutcome {
  const ok = worst <= 1;
  return { ok, worst, text: ok ? `ok (${worst.toPrecision(2)} of bound)` : `WRONG: ${what}` };
}

/**
 * |actual - expected| <= rtol * max|expected| + atol elementwise; NaN or Inf on either side fails
 * (a kernel that skipped its output, or a reference gone wrong), and so does a length mismatch.
 */
export function compareOutput(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol = 0): CheckOutcome {
  if (actual.length !== expected.length || actual.length === 0) return outcome(Infinity, `${actual.length} values, expected ${expected.length}`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i]!)) scale = Math.max(scale, Math.abs(expected[i]!));
  const bound = rtol * scale + atol;
  let worst = 0;
  let at = 0;
  for (let i = 0; i < actual.length; i++) {
    const [a, e] = [actual[i]!, expected[i]!];
    const err = Number.isFinite(a) && Number.isFinite(e) ? Math.abs(a - e) / (bound || Number.MIN_VALUE) : Infinity;
    if (!(err <= worst)) [worst, at] = [err, i];
    if (worst === Infinity) break;
  }
  return outcome(worst, `[${at}] = ${actual[at]} vs ${expected[at]} (bound ${bound.toPrecision(3)})`);
}

/** The worse of several outcomes (every output of a kernel), ok only if all are. */
export function combineOutcomes(...cs: CheckOutcome[]): CheckOutcome {
  const bad = cs.find((c) => !c.ok);
  if (bad) return bad;
  return outcome(Math.max(...cs.map((c) => c.worst)), '');
}

export interface MatmulCheckShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** C stored in f16: half an ulp (2^-11 relative) on top of the accumulation bound. */
  f16Out?: boolean;
}

/**
 * Sampled float64 check of C = op(A)·op(B) on `n` entries (seeded): each within K·2^-23·Σ|a·b|
 * of its float64 dot product (f32 accumulation), plus 2^-11·|c| for f16 output. A and B are the
 * values as stored on the device.
 */
export function checkMatmulSampled(a: ArrayLike<number>, b: ArrayLike<number>, c: ArrayLike<number>, s: MatmulCheckShape, n = 256, seed = 1): CheckOutcome {
  let state = seed >>> 0 || 1;
  const next = (m: number) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % m;
  };
  let worst = 0;
  let what = '';
  for (let t = 0; t < n; t++) {
    const i = next(s.M);
    const j = next(s.N);
    let ref = 0;
    let mag = 0;
    for (let k = 0; k < s.K; k++) {
      const p = (s.transA ? a[k * s.M + i]! : a[i * s.K + k]!) * (s.transB ? b[j * s.K + k]! : b[k * s.N + j]!);
      ref += p;
      mag += Math.abs(p);
    }
    const got = c[i * s.N + j]!;
    const bound = s.K * 2 ** -23 * mag + (s.f16Out ? 2 ** -11 * Math.abs(ref) : 0) + 1e-30;
    const err = Number.isFinite(got) ? Math.abs(got - ref) / bound : Infinity;
    if (!(err <= worst)) [worst, what] = [err, `C[${i},${j}] = ${got} vs ${ref}`];
  }
  return outcome(worst, what);
}

const checked = new Map<string, CheckOutcome>();

/** A timed case: `record` records one iteration (no waiting); `check` runs it once and compares. */
export interface TimedCase {
  /** The shape and configuration: the check runs once per key in a process. */
  key: string;
  record: () => void;
  /** Run the case once, read what it wrote, compare with a float64 reference. */
  check: () => Promise<CheckOutcome>;
}

/**
 * Check a case's output (once per key), then time it. A wrong output is not timed: the row
 * gets `timing: null` and the check's text says what was wrong.
 */
export async function timeCase(rt: DawnRuntime, c: TimedCase, opts: GpuTimingOptions = {}): Promise<{ timing: Timing | null; check: CheckOutcome }> {
  let check = checked.get(c.key);
  if (!check) {
    try {
      check = await c.check();
    } catch (e) {
      check = outcome(Infinity, `check threw: ${(e as Error).message}`);
    }
    checked.set(c.key, check);
  }
  if (!check.ok) return { timing: null, check };
  return { timing: await timeGpu(rt, c.record, opts), check };
}

export function round(x: number, digits = 3): number {
  const p = 10 ** digits;
  return Math.round(x * p) / p;
}

export function markdownTable(rows: BenchRow[], columns?: string[]): string {
  if (rows.length === 0) return '_(no rows)_\n';
  const cols = columns ?? Object.keys(rows[0]!);
  const fmt = (c: Cell) => (c === null || c === undefined ? '' : typeof c === 'number' ? String(c) : c.replace(/\|/g, '\\|'));
  const numeric = cols.map((c) => rows.every((r) => typeof r[c] === 'number' || r[c] === null || r[c] === undefined));
  const lines = [`| ${cols.join(' | ')} |`, `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`];
  for (const r of rows) lines.push(`| ${cols.map((c) => fmt(r[c] ?? null)).join(' | ')} |`);
  return lines.join('\n') + '\n';
}

export interface Environment {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  adapter?: string;
}

export function environment(rt?: DawnRuntime): Environment {
  const c = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    adapter: rt ? `${rt.caps.adapter.vendor} ${rt.caps.adapter.device || rt.caps.adapter.description} (${rt.caps.adapter.backend})` : undefined,
  };
}

/** Write bench/results/<suite>.json and .md. */
export function writeResults(suite: string, results: SuiteResult[], env: Environment): { json: string; md: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = join(RESULTS_DIR, `${suite}.json`);
  const md = join(RESULTS_DIR, `${suite}.md`);
  writeFileSync(json, JSON.stringify({ suite, env, results }, null, 2) + '\n');
  const parts = [`# bench: ${suite}`, '', `${env.date} · node ${env.node} · ${env.cpu} × ${env.cores}${env.adapter ? ` · ${env.adapter}` : ''}`, ''];
  for (const r of results) {
    parts.push(`## ${r.title}`, '', markdownTable(r.rows, r.columns));
    if (r.notes?.length) parts.push(...r.notes.map((n) => `- ${n}`), '');
  }
  writeFileSync(md, parts.join('\n'));
  return { json, md };
}
