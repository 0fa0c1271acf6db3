/**
 * Benchmark harness shared by every bench/*.bench.ts suite.
 *
 * A suite module exports `run(ctx): Promise<SuiteResult | SuiteResult[]>`; bench/run.js
 * imports it and writes bench/results/<suite>.json plus bench/results/<suite>.md (one markdown
 * table per SuiteResult). GPU work is timed by recording N iterations into one submit and
 * awaiting the queue (per-dispatch timing would measure the round trip, not the kernel).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import type { DawnRuntime } from '../src/kernels/runtime.ts';

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
  /** Milliseconds per iteration: median and best over the samples. */
  medianMs: number;
  bestMs: number;
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
  record();
  await rt.sync();
  // Calibrate: one timed iteration (after warm-up), then scale to the sample target.
  let t0 = performance.now();
  record();
  await rt.sync();
  const one = Math.max(performance.now() - t0, 1e-3);
  const iters = Math.max(1, Math.min(maxIters, Math.round(sampleMs / one)));
  const per: number[] = [];
  for (let s = 0; s < samples; s++) {
    t0 = performance.now();
    for (let i = 0; i < iters; i++) record();
    await rt.sync();
    per.push((performance.now() - t0) / iters);
  }
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

function summarize(per: number[], iters: number): Timing {
  const sorted = [...per].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)]!, bestMs: sorted[0]!, iters, samples: per.length };
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
