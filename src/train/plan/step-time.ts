/**
 * How long one optimizer step takes on a target, before the run starts: the plan's FLOPs (counted by
 * the meta runtime from the real step's matmuls and attention) over the target's sustained rate,
 * plus, with optim.offload "host", the bytes crossing the bus and the host AdamW. Every part says
 * whether it is measured or an assumption:
 *   compute   measured when bench/results/gpu holds a GPU check of this card (the engine's own
 *             matmul GFLOP/s on the model's shapes), else 20% of the card's f32 peak — the best
 *             published WGSL f32 matmul on NVIDIA reaches 17-24% (docs/DESIGN.md §4); the f16 path
 *             runs without tensor cores (the subgroup-matrix kernel is off until checked on a GPU);
 *   transfer  the target's host link (PCIe) at an assumed effective rate;
 *   host      the host AdamW's update rate measured on this machine.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adamwSpan, updateScalars } from '../../optim/host-adamw.ts';
import type { MemoryPlan } from './planner.ts';
import type { TargetProfile } from './targets.ts';

export interface StepTimePart {
  seconds: number;
  basis: 'measured' | 'assumption';
  note: string;
}

export interface StepTime {
  target: string;
  tokensPerStep: number;
  flops: number;
  compute: StepTimePart & { flopsPerSecond: number };
  transfer: (StepTimePart & { bytes: number; bytesPerSecond: number }) | null;
  host: (StepTimePart & { parametersPerSecond: number; threads: number }) | null;
  /** Compute, then the host update with the transfers overlapping it (gradients stream while groups update). */
  seconds: number;
  /** Every part one after the other (an upper bound). */
  serialSeconds: number;
}

/** The host AdamW's update rate: one thread measured, times the worker threads (assumed to scale). */
export function measureHostAdamW(elements = 1 << 22): { parametersPerSecond: number; threads: number; perThread: number } {
  const p = new Float32Array(elements).fill(0.5);
  const g = new Float32Array(elements).fill(0.01);
  const m = new Float32Array(elements);
  const v = new Float32Array(elements);
  const k = updateScalars({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, 1e-3, 1, 1, true);
  adamwSpan(p, g, m, v, 0, elements, 0, k); // warm the JIT
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 150) {
    adamwSpan(p, g, m, v, 0, elements, 0, k);
    n += elements;
  }
  const perThread = n / ((performance.now() - t0) / 1000);
  const threads = availableParallelism();
  return { parametersPerSecond: perThread * threads, threads, perThread };
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

export function estimateStepTime(
  plan: MemoryPlan,
  target: TargetProfile,
  hostRate: { parametersPerSecond: number; threads: number; perThread: number } | null,
): StepTime | null {
  if (!target.peak) return null;
  const flops = plan.flopsPerStep;
  const measured = measuredRate(target.name, plan.run.activations);
  const rate = measured?.flopsPerSecond ?? ASSUMED_EFFICIENCY * target.peak.f32;
  const compute = {
    seconds: flops / rate,
    flopsPerSecond: rate,
    basis: measured ? ('measured' as const) : ('assumption' as const),
    note: measured
      ? `the engine's ${plan.run.activations} matmuls on the model's shapes, ${(rate / 1e12).toFixed(2)} TFLOP/s (${measured.file})`
      : `assumption: ${(ASSUMED_EFFICIENCY * 100).toFixed(0)}% of the card's ${(target.peak.f32 / 1e12).toFixed(1)} TFLOP/s f32 peak (no GPU check of this card in bench/results/gpu)`,
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
          note: `assumption: ${(link / 1e9).toFixed(0)} GB/s effective host link (PCIe ${link > 30e9 ? '5.0' : '4.0'} x16), gradients down and working weights up`,
        }
      : null;
  const host =
    h && hostRate
      ? {
          seconds: h.parameters / hostRate.parametersPerSecond,
          parametersPerSecond: hostRate.parametersPerSecond,
          threads: hostRate.threads,
          basis: 'measured' as const,
          note: `measured on this machine: ${(hostRate.perThread / 1e6).toFixed(0)} M parameters/s on one thread, x ${hostRate.threads} worker threads (assumed to scale)`,
        }
      : null;
  const serial = compute.seconds + (transfer?.seconds ?? 0) + (host?.seconds ?? 0);
  return {
    target: target.name,
    tokensPerStep: plan.tokensPerMicroBatch * plan.run.accumulation,
    flops,
    compute,
    transfer,
    host,
    seconds: compute.seconds + Math.max(transfer?.seconds ?? 0, host?.seconds ?? 0),
    serialSeconds: serial,
  };
}
