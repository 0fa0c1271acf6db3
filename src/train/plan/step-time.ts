/**
 * How long one optimizer step takes on a target, before the run starts: the plan's FLOPs (counted by
 * the meta runtime from the real step's matmuls and attention) over the target's sustained rate,
 * plus, with optim.offload "host", the bytes crossing the bus and the host AdamW; and the whole
 * schedule (schedule.steps of them). Every part says where its number comes from:
 *   compute   measured when bench/results/gpu holds a GPU check of this card (the engine's own
 *             matmul GFLOP/s on the model's shapes), else 20% of the card's f32 FMA peak — the best
 *             published WGSL f32 matmul on NVIDIA reaches 17-24% (docs/DESIGN.md §4). f32 FMA for
 *             every card and both activation dtypes: the engine's matmuls multiply and accumulate
 *             in f32 (f16 is storage; shaders/matmul-tiled.wgsl) and its tensor-core
 *             (subgroup-matrix) kernel is off until checked on a GPU, so tensor-core peaks do not
 *             apply;
 *   transfer  the target's host link (PCIe) at an assumed effective rate;
 *   host      the host AdamW's update rate: given with --host-adamw-rate, or measured once per
 *             machine (CPU model and thread count) and cached in the cache folder
 *             (src/util/cache-dir.ts), so repeated plans agree.
 */
import { cpus, availableParallelism } from 'node:os';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { adamwSpan, updateScalars } from '../../optim/host-adamw.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { cacheDir } from '../../util/cache-dir.ts';
import type { MemoryPlan } from './planner.ts';
import type { TargetProfile } from './targets.ts';

export interface StepTimePart {
  seconds: number;
  basis: 'measured' | 'assumption' | 'given';
  note: string;
}

export interface StepTime {
  target: string;
  tokensPerStep: number;
  flops: number;
  /** `units`: what does the arithmetic, as the plan line says it (f32 FMA, no tensor cores). */
  compute: StepTimePart & { flopsPerSecond: number; units: string };
  transfer: (StepTimePart & { bytes: number; bytesPerSecond: number }) | null;
  host: (StepTimePart & { parametersPerSecond: number; threads: number; source: HostAdamWRate['source'] }) | null;
  /** Compute, then the host update with the transfers overlapping it (gradients stream while groups update). */
  seconds: number;
  /** Every part one after the other (an upper bound). */
  serialSeconds: number;
  /** The configured schedule at this step time: schedule.steps optimizer steps, validation and checkpoints not counted. */
  schedule: { steps: number; tokens: number; seconds: number; tokensPerSecond: number };
}

/** What does the arithmetic on every GPU target (see the header: f32 FMA, no tensor cores). */
export const COMPUTE_UNITS = 'f32 FMA, no tensor cores';

// ---------------------------------------------------------------------------------------------
// The host AdamW rate

/** Where the host AdamW rate of a plan came from. */
export interface HostAdamWRate {
  /** All worker threads together. */
  parametersPerSecond: number;
  threads: number;
  /** One thread's rate; null when given. */
  perThread: number | null;
  /** measured: now, and cached; cached: read from the cache; given: --host-adamw-rate. */
  source: 'measured' | 'cached' | 'given';
  note: string;
}

/**
 * One thread's host AdamW rate: the median of `runs` timed runs of `runMs` each over 16 MiB arrays
 * (larger than the caches, as the real update's), after a warm-up. Single runs of 150 ms spread
 * from 65 to 103 M parameters/s on a shared machine; the median of 9 keeps a neighbour's burst out.
 */
export function measureHostAdamW(opts: { runs?: number; runMs?: number; elements?: number } = {}): { perThread: number; runs: number[] } {
  const { runs = 9, runMs = 120, elements = 1 << 22 } = opts;
  const p = new Float32Array(elements).fill(0.5);
  const g = new Float32Array(elements).fill(0.01);
  const m = new Float32Array(elements);
  const v = new Float32Array(elements);
  const k = updateScalars({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, 1e-3, 1, 1, true);
  for (let i = 0; i < 3; i++) adamwSpan(p, g, m, v, 0, elements, 0, k); // warm the JIT and the pages
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < runMs) {
      adamwSpan(p, g, m, v, 0, elements, 0, k);
      n += elements;
    }
    rates.push(n / ((performance.now() - t0) / 1000));
  }
  const sorted = [...rates].sort((a, b) => a - b);
  return { perThread: sorted[Math.floor(sorted.length / 2)]!, runs: rates };
}

const CacheEntry = z.object({
  perThread: z.number().positive(),
  threads: z.number().int().positive(),
  runs: z.array(z.number()),
  measuredAt: z.string(),
  node: z.string(),
});
const CacheFile = z.record(z.string(), CacheEntry);

/** The cache file of the host AdamW rate, one entry per machine key. */
export function hostAdamWCachePath(): string {
  return join(cacheDir(), 'host-adamw.json');
}

/** A machine, as far as the host AdamW cares: the CPU model and the worker threads the update runs on. */
export function machineKey(threads = availableParallelism()): string {
  return `${cpus()[0]?.model.trim() || 'unknown CPU'} / ${threads} threads`;
}

const mps = (r: number) => `${(r / 1e6).toFixed(0)} M parameters/s`;

function readCache(path: string): z.infer<typeof CacheFile> {
  try {
    const r = CacheFile.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return r.success ? r.data : {};
  } catch {
    return {}; // no cache yet, or unreadable: measure again
  }
}

/**
 * The host AdamW rate a plan uses: `given` (parameters/s, from --host-adamw-rate) as is; else this
 * machine's cached measurement; else measured now and cached (a cache that cannot be written is
 * said in the note, and the rate is still used).
 */
export function hostAdamWRate(opts: { given?: number; cachePath?: string; threads?: number } = {}): HostAdamWRate {
  const threads = opts.threads ?? availableParallelism();
  if (opts.given !== undefined)
    return {
      parametersPerSecond: opts.given,
      threads,
      perThread: null,
      source: 'given',
      note: `given with --host-adamw-rate: ${mps(opts.given)} (the training machine's worker threads together)`,
    };
  const path = opts.cachePath ?? hostAdamWCachePath();
  const key = machineKey(threads);
  const cache = readCache(path);
  const hit = cache[key];
  const tail = (e: z.infer<typeof CacheEntry>) =>
    `one thread ${mps(e.perThread)} (median of ${e.runs.length} runs, ${(Math.min(...e.runs) / 1e6).toFixed(0)}-${(Math.max(...e.runs) / 1e6).toFixed(0)} M), ` +
    `x ${threads} worker threads (assumed to scale) = ${mps(e.perThread * threads)}`;
  const elsewhere = "this machine is not necessarily the training machine: give that one's rate with --host-adamw-rate <M parameters/s>";
  if (hit)
    return {
      parametersPerSecond: hit.perThread * threads,
      threads,
      perThread: hit.perThread,
      source: 'cached',
      note: `measured on this machine (${key}) on ${hit.measuredAt.slice(0, 10)}, cached in ${path} (delete it to measure again): ${tail(hit)}; ${elsewhere}`,
    };
  const m = measureHostAdamW();
  const entry = { perThread: m.perThread, threads, runs: m.runs, measuredAt: new Date().toISOString(), node: process.version };
  let stored = `cached in ${path}`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomic(path, `${JSON.stringify({ ...cache, [key]: entry }, null, 2)}\n`);
  } catch (e) {
    stored = `not cached (${path}: ${(e as Error).message})`;
  }
  return {
    parametersPerSecond: m.perThread * threads,
    threads,
    perThread: m.perThread,
    source: 'measured',
    note: `measured now on this machine (${key}), ${stored}: ${tail(entry)}; ${elsewhere}`,
  };
}

/** The engine's matmul rate on `card` from a committed GPU check, when one exists. */
function measuredRate(card: string, dtype: 'f32' | 'f16'): { flopsPerSecond: number; file: string } | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir) && !existsSync(join(dir, 'bench', 'results', 'gpu'))) dir = dirname(dir);
  const gpuDir = join(dir, 'bench', 'results', 'gpu');
  if (!existsSync(gpuDir)) return null;
  for (const f of readdirSync(gpuDir).filter((n) => n.endsWith('.json') && n.toLowerCase().includes(card.split('-')[0]!.replace('rtx', '')))) {
    try {
      const r = JSON.parse(readFileSync(join(gpuDir, f), 'utf8')) as { matmul?: { shape?: string; variant?: string; 'GFLOP/s'?: number | null }[] };
      const rows = (r.matmul ?? []).filter(
        (x) =>
          /50M|200M/.test(x.shape ?? '') &&
          (dtype === 'f16' ? x.variant?.startsWith('f16') : /^f32 \(/.test(x.variant ?? '')) &&
          typeof x['GFLOP/s'] === 'number',
      );
      if (rows.length === 0) continue;
      const g = rows.map((x) => x['GFLOP/s']!).sort((a, b) => a - b)[Math.floor(rows.length / 2)]!;
      return { flopsPerSecond: g * 1e9, file: `bench/results/gpu/${f}` };
    } catch {
      continue; // a file that does not parse is not evidence
    }
  }
  return null;
}

/** Assumed host link rates (effective, one direction): PCIe 4.0 x16 on Ampere/Ada cards, PCIe 5.0 on Hopper. */
const LINK: Record<string, number> = { 'rtx-3090': 25e9, 'rtx-4090': 25e9, 'a100-40': 25e9, 'a100-80': 25e9, 'h100-80': 50e9, h200: 50e9 };

const ASSUMED_EFFICIENCY = 0.2;

export function estimateStepTime(plan: MemoryPlan, target: TargetProfile, hostRate: HostAdamWRate | null): StepTime | null {
  const peak = target.peak;
  if (!peak) return null;
  const flops = plan.flopsPerStep;
  const measured = measuredRate(target.name, plan.run.activations);
  const rate = measured?.flopsPerSecond ?? ASSUMED_EFFICIENCY * peak.f32;
  const tflops = (r: number) => `${(r / 1e12).toFixed(1)} TFLOP/s`;
  const compute = {
    seconds: flops / rate,
    flopsPerSecond: rate,
    units: COMPUTE_UNITS,
    basis: measured ? ('measured' as const) : ('assumption' as const),
    note: measured
      ? `the engine's ${plan.run.activations} matmuls (${COMPUTE_UNITS}) on the model's shapes, ${(rate / 1e12).toFixed(2)} TFLOP/s (${measured.file})`
      : `${(ASSUMED_EFFICIENCY * 100).toFixed(0)}% of ${target.name}'s ${tflops(peak.f32)} f32 FMA peak (${peak.source}) = ${tflops(rate)}, for ${plan.run.activations} activations too: ` +
        `the engine multiplies and accumulates in f32 (f16 is storage) and its tensor-core kernel is off until checked on a GPU, so the ${tflops(peak.f16)} f16 tensor-core peak does not apply (no GPU check of this card in bench/results/gpu)`,
  };
  const h = plan.host;
  const link = LINK[target.name];
  const transfer =
    h && link
      ? {
          seconds: (h.downBytes + h.upBytes) / link,
          bytes: h.downBytes + h.upBytes,
          bytesPerSecond: link,
          basis: 'assumption' as const,
          note: `${(link / 1e9).toFixed(0)} GB/s effective host link (PCIe ${link > 30e9 ? '5.0' : '4.0'} x16), gradients down and working weights up`,
        }
      : null;
  const host =
    h && hostRate
      ? {
          seconds: h.parameters / hostRate.parametersPerSecond,
          parametersPerSecond: hostRate.parametersPerSecond,
          threads: hostRate.threads,
          source: hostRate.source,
          basis: hostRate.source === 'given' ? ('given' as const) : ('measured' as const),
          note: hostRate.note,
        }
      : null;
  const serial = compute.seconds + (transfer?.seconds ?? 0) + (host?.seconds ?? 0);
  const seconds = compute.seconds + Math.max(transfer?.seconds ?? 0, host?.seconds ?? 0);
  const tokensPerStep = plan.tokensPerMicroBatch * plan.run.accumulation;
  const steps = plan.run.steps;
  return {
    target: target.name,
    tokensPerStep,
    flops,
    compute,
    transfer,
    host,
    seconds,
    serialSeconds: serial,
    schedule: { steps, tokens: steps * tokensPerStep, seconds: steps * seconds, tokensPerSecond: tokensPerStep / seconds },
  };
}
