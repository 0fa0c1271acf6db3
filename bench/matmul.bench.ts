/**
 * Matmul throughput: our kernels vs tfjs-backend-webgpu (same Dawn instance, same adapter),
 * cubes and the TimeMoE-50M transformer shapes, the three backward layouts, the grouped
 * expert matmul vs one dispatch per expert, f32 vs f16 storage (f32 math), and the numbered
 * variant progression.
 * Time = N iterations recorded into one submit, then one wait (harness.timeGpu).
 */
import { getRuntime, type DawnRuntime } from '../src/kernels/runtime.ts';
import type { DType, Tensor } from '../src/kernels/tensor.ts';
import { matmul, groupedMatmul, type FloatDType } from '../src/kernels/matmul.ts';
import { VARIANTS, resolveConfig, type MatmulConfig } from '../src/kernels/matmul-config.ts';
import { round, timeGpu, type BenchRow, type SuiteContext, type SuiteResult, type Timing } from './harness.ts';
import { loadTfjs, timeTfMatmul, type TF } from './peers/tfjs.ts';

/** 2 cores x AVX2 FMA (2 x 8 lanes x 2 flops) x 3.5 GHz (docs/DESIGN.md §4). */
const CPU_PEAK_GFLOPS = 218;
const TOKENS = 1024;

interface Shape {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

function randomTensor(rt: DawnRuntime, shape: number[], dtype: DType = 'f32'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.sin(i * 12.9898) * 0.5; // cheap, deterministic, not constant
  return rt.upload(d, shape, dtype);
}

function gflops(s: { M: number; N: number; K: number }, ms: number): number {
  return (2 * s.M * s.N * s.K) / (ms * 1e6);
}

function layout(s: Shape): string {
  return `${s.transA ? 'Aᵀ' : 'A'}·${s.transB ? 'Bᵀ' : 'B'}`;
}

/** Storage types of A, B and C (the math is f32 either way). */
interface Precision {
  name: string;
  a: FloatDType;
  b: FloatDType;
  out: FloatDType;
}

const F32: Precision = { name: 'f32', a: 'f32', b: 'f32', out: 'f32' };

async function timeOurs(rt: DawnRuntime, s: Shape, samples: number, config?: Partial<MatmulConfig>, p: Precision = F32): Promise<Timing> {
  const a = randomTensor(rt, s.transA ? [s.K, s.M] : [s.M, s.K], p.a);
  const b = randomTensor(rt, s.transB ? [s.N, s.K] : [s.K, s.N], p.b);
  const out = rt.empty([s.M, s.N], p.out);
  const t = await timeGpu(rt, () => void matmul(a, b, { transA: s.transA, transB: s.transB, out, config }), { samples, sampleMs: 200 });
  a.dispose();
  b.dispose();
  out.dispose();
  return t;
}

async function compareRows(rt: DawnRuntime, tf: TF | null, shapes: Shape[], samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const s of shapes) {
    const ours = await timeOurs(rt, s, samples);
    const peer = tf ? await timeTfMatmul(tf, s.M, s.N, s.K, s.transA, s.transB, { samples, sampleMs: 200 }) : null;
    const g = gflops(s, ours.bestMs);
    const gp = peer ? gflops(s, peer.bestMs) : null;
    const cfg = resolveConfig(s);
    rows.push({
      shape: s.name,
      'M×N×K': `${s.M}×${s.N}×${s.K}`,
      layout: layout(s),
      'ours ms (best)': round(ours.bestMs, 2),
      'ours GFLOP/s (best)': round(g, 2),
      'ours GFLOP/s (median)': round(gflops(s, ours.medianMs), 2),
      'tfjs GFLOP/s (best)': gp === null ? null : round(gp, 2),
      'ours / tfjs': gp === null ? null : round(g / gp, 2),
      '% of CPU peak': round((100 * g) / CPU_PEAK_GFLOPS, 1),
      config: `${cfg.lane} wg${cfg.wgL}x${cfg.wgU} ${cfg.tl}x${cfg.tu} k${cfg.ku}${cfg.vec4 ? ' vec4' : ''}`,
    });
    log(`${s.name} ${layout(s)}: ours ${g.toFixed(2)} GFLOP/s${gp !== null ? `, tfjs ${gp.toFixed(2)} (x${(g / gp).toFixed(2)})` : ''}`);
  }
  return rows;
}

/** Grouped expert matmul (8 experts, uneven counts) vs one matmul dispatch per expert. */
async function groupedRows(rt: DawnRuntime, samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const E = 8, R = 2048, K = 384, N = 768;
  // Uneven but fixed routing: 512, 384, 320, 256, 224, 192, 128, 32 rows.
  const counts = [512, 384, 320, 256, 224, 192, 128, 32];
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const x = randomTensor(rt, [R, K]);
  const w = randomTensor(rt, [E, N, K]);
  const off = rt.upload(offsets, [E + 1], 'u32');
  const out = rt.empty([R, N]);
  const one = await timeGpu(rt, () => void groupedMatmul(x, w, off, { out }), { samples, sampleMs: 200 });
  // Per-expert baseline: separate row blocks and weights, one dispatch each.
  const xs = counts.map((c) => randomTensor(rt, [c, K]));
  const ws = counts.map(() => randomTensor(rt, [N, K]));
  const outs = counts.map((c) => rt.empty([c, N]));
  const per = await timeGpu(rt, () => counts.forEach((_, e) => void matmul(xs[e]!, ws[e]!, { transB: true, out: outs[e]! })), { samples, sampleMs: 200 });
  const flops = { M: R, N, K };
  for (const t of [x, w, off, out, ...xs, ...ws, ...outs]) t.dispose();
  log(`grouped: one dispatch ${gflops(flops, one.bestMs).toFixed(2)} GFLOP/s, per expert ${gflops(flops, per.bestMs).toFixed(2)}`);
  return [
    { method: 'groupedMatmul, one dispatch', 'ms (best)': round(one.bestMs, 2), 'ms (median)': round(one.medianMs, 2), 'GFLOP/s (best)': round(gflops(flops, one.bestMs), 2) },
    { method: '8 matmul dispatches (one per expert)', 'ms (best)': round(per.bestMs, 2), 'ms (median)': round(per.medianMs, 2), 'GFLOP/s (best)': round(gflops(flops, per.bestMs), 2) },
  ];
}

/** The same products with f32 and f16 storage (f32 accumulation): what f16 operands cost or save. */
export async function precisionRows(rt: DawnRuntime, shapes: Shape[], samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const kinds: Precision[] = [F32, { name: 'f16 in, f32 out', a: 'f16', b: 'f16', out: 'f32' }, { name: 'f16 in/out', a: 'f16', b: 'f16', out: 'f16' }];
  const rows: BenchRow[] = [];
  for (const s of shapes) {
    const row: BenchRow = { shape: s.name, 'M×N×K': `${s.M}×${s.N}×${s.K}`, layout: layout(s) };
    let base = 0;
    for (const p of kinds) {
      const t = await timeOurs(rt, s, samples, undefined, p);
      const g = gflops(s, t.bestMs);
      if (p === F32) base = g;
      row[`${p.name} GFLOP/s (best)`] = round(g, 2);
      row[`${p.name} (median)`] = round(gflops(s, t.medianMs), 2);
      if (p !== F32) row[`${p.name} / f32`] = round(g / base, 2);
    }
    log(`precision ${s.name} ${layout(s)}: ${JSON.stringify(row)}`);
    rows.push(row);
  }
  return rows;
}

async function variantRows(rt: DawnRuntime, shapes: Shape[], samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [name, cfg] of Object.entries(VARIANTS)) {
    const row: BenchRow = { variant: name };
    for (const s of shapes) {
      const t = await timeOurs(rt, s, samples, cfg);
      row[`${s.name} GFLOP/s (best)`] = round(gflops(s, t.bestMs), 2);
      row[`${s.name} (median)`] = round(gflops(s, t.medianMs), 2);
    }
    log(`${name}: ${JSON.stringify(row)}`);
    rows.push(row);
  }
  return rows;
}

export async function run(ctx: SuiteContext): Promise<SuiteResult[]> {
  const rt = await getRuntime({ announce: false });
  const samples = ctx.quick ? 2 : 5;
  let tf: TF | null = null;
  let peerNote = 'tfjs-backend-webgpu 4.22.0 on the same Dawn instance (its own device on the same adapter).';
  try {
    tf = await loadTfjs();
  } catch (e) {
    peerNote = `tfjs peer unavailable: ${(e as Error).message}`;
    ctx.log(peerNote);
  }
  const T = TOKENS;
  const cubes: Shape[] = [256, 512, 1024].map((n) => ({ name: `${n}³`, M: n, N: n, K: n, transA: false, transB: false }));
  const model: Shape[] = [
    { name: 'q proj', M: T, N: 384, K: 384, transA: false, transB: true },
    { name: 'expert up', M: T, N: 768, K: 384, transA: false, transB: true },
    { name: 'expert down', M: T, N: 384, K: 768, transA: false, transB: true },
    { name: 'shared expert up', M: T, N: 1536, K: 384, transA: false, transB: true },
  ];
  const layouts: Shape[] = [
    { name: 'expert up fwd', M: T, N: 768, K: 384, transA: false, transB: true },
    { name: 'expert up dX', M: T, N: 384, K: 768, transA: false, transB: false },
    { name: 'expert up dW', M: 768, N: 384, K: T, transA: true, transB: false },
  ];
  const results: SuiteResult[] = [];
  const note = [
    `GFLOP/s from the best of ${samples} samples (median also given where useful); each sample records N iterations in one submit, then waits.`,
    `CPU fp32 peak ${CPU_PEAK_GFLOPS} GFLOP/s (2 cores). The CPU is shared with other processes while this runs: absolute numbers are noisy, ratios within one row less so.`,
    peerNote,
  ];
  results.push({ title: 'cubes (A·B)', rows: await compareRows(rt, tf, ctx.quick ? cubes.slice(0, 2) : cubes, samples, ctx.log), notes: note });
  results.push({ title: `TimeMoE-50M linear layers, ${T} tokens (x·Wᵀ)`, rows: await compareRows(rt, tf, ctx.quick ? model.slice(0, 1) : model, samples, ctx.log), notes: note });
  results.push({ title: 'the three layouts of one linear layer (forward, dX, dW)', rows: await compareRows(rt, tf, layouts, samples, ctx.log), notes: note });
  results.push({
    title: 'grouped expert matmul: 8 experts, 2048 routed rows, 384 → 768',
    rows: await groupedRows(rt, samples, ctx.log),
    notes: ['Rows per expert: 512, 384, 320, 256, 224, 192, 128, 32. One dispatch finds each tile’s expert from the GPU offsets.'],
  });
  if (rt.caps.f16) {
    const pShapes: Shape[] = [cubes[2]!, { name: 'expert up', M: T, N: 768, K: 384, transA: false, transB: true }];
    results.push({
      title: 'storage precision: f32 vs f16 operands / output (f32 math)',
      rows: await precisionRows(rt, ctx.quick ? pShapes.slice(0, 1) : pShapes, samples, ctx.log),
      notes: ['Same kernel and tile configuration; f16 operands are loaded as vec4<f16> (k4 / r4 as for f32) and widened to f32.'],
    });
  }
  const vShapes: Shape[] = [
    { name: '512³ x·Wᵀ', M: 512, N: 512, K: 512, transA: false, transB: true },
    { name: 'expert up', M: T, N: 768, K: 384, transA: false, transB: true },
  ];
  results.push({
    title: 'variant progression (x·Wᵀ layout)',
    rows: await variantRows(rt, ctx.quick ? vShapes.slice(0, 1) : vShapes, ctx.quick ? 2 : 3, ctx.log),
    notes: ['See bench/results/matmul-variants.md for what each variant changes and why it helped or not.'],
  });
  return results;
}
