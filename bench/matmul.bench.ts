/**
 * Matmul throughput: our kernels vs tfjs-backend-webgpu (same Dawn instance, same adapter),
 * cubes and the TimeMoE-50M transformer shapes, the three backward layouts, the grouped
 * expert matmul vs one dispatch per expert, f32 vs f16 storage (f32 math), and the numbered
 * variant progression.
 * Time = N iterations recorded into one submit, then one wait (harness.timeGpu).
 */
import type { DawnRuntime } from '../src/kernels/runtime.ts';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import type { DType, Tensor } from '../src/kernels/tensor.ts';
import { matmul, groupedMatmul, type FloatDType } from '../src/kernels/matmul.ts';
import { VARIANTS, forceMatmul, resolveConfig, type MatmulConfig, type MatmulShape } from '../src/kernels/matmul-config.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/kernels/f16.ts';
import { checkMatmulSampled, combineOutcomes, round, spread, timeCase } from './harness.ts';
import type { BenchRow, CheckOutcome, SuiteContext, SuiteResult, TimedCase, Timing } from './harness.ts';
import { loadTfjs, timeTfMatmul, type TF } from './peers/tfjs.ts';

/** 2 cores x AVX2 FMA (2 x 8 lanes x 2 flops) x 3.5 GHz (docs/DESIGN.md §4). */
const CPU_PEAK_GFLOPS = 218;
const TOKENS = 1024;

/** A named problem of the kernels' own shape type. */
export type Shape = MatmulShape & { name: string };

/** Cheap, deterministic, not constant; as the device stores it (f16 rounded for f16). */
function randomHost(n: number, dtype: DType = 'f32'): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.sin(i * 12.9898) * 0.5;
  return dtype === 'f16' ? d.map((v) => f16BitsToF32(f32ToF16Bits(v))) : d;
}

function randomTensor(rt: DawnRuntime, shape: number[], dtype: DType = 'f32'): Tensor {
  return rt.upload(randomHost(shape.reduce((a, b) => a * b, 1)), shape, dtype);
}

/** A timing's columns with the rate from its best and its median sample, and the spread. */
function rateCells(prefix: string, t: Timing | null, flops: number): BenchRow {
  const p = prefix ? `${prefix} ` : '';
  if (!t) return { [`${p}GFLOP/s (best)`]: null, [`${p}GFLOP/s (median)`]: null, [`${p}min–max ms`]: null };
  return {
    [`${p}GFLOP/s (best)`]: round(flops / (t.bestMs * 1e6), 2),
    [`${p}GFLOP/s (median)`]: round(flops / (t.medianMs * 1e6), 2),
    [`${p}min–max ms`]: spread(t, 2),
  };
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

/** Our matmul of shape `s` on random operands: `record` records one product, `check` runs it once against float64. */
export function matmulCase(rt: DawnRuntime, s: Shape, config?: Partial<MatmulConfig>, p: Precision = F32): TimedCase & { dispose(): void } {
  const [na, nb] = [s.M * s.K, s.K * s.N];
  const a = rt.upload(randomHost(na), s.transA ? [s.K, s.M] : [s.M, s.K], p.a);
  const b = rt.upload(randomHost(nb), s.transB ? [s.N, s.K] : [s.K, s.N], p.b);
  const out = rt.empty([s.M, s.N], p.out);
  const record = () => void rt.withPolicy(config ? forceMatmul(config) : {}, () => matmul(a, b, { transA: s.transA, transB: s.transB, out }));
  const check = async () => {
    rt.fill(out, NaN); // an output the kernel does not write fails
    record();
    return checkMatmulSampled(randomHost(na, p.a), randomHost(nb, p.b), await out.readF32(), { ...s, f16Out: p.out === 'f16' });
  };
  return {
    key: `matmul ${JSON.stringify({ ...s, name: undefined })} ${JSON.stringify(config ?? {})} ${p.name}`,
    record,
    check,
    dispose: () => [a, b, out].forEach((t) => t.dispose()),
  };
}

/** Our matmul of shape `s`, its output checked on sampled entries against float64 (once per shape and config), then timed. */
async function timeOurs(
  rt: DawnRuntime,
  s: Shape,
  samples: number,
  config?: Partial<MatmulConfig>,
  p: Precision = F32,
): Promise<{ timing: Timing | null; check: CheckOutcome }> {
  const c = matmulCase(rt, s, config, p);
  const r = await timeCase(rt, c, { samples, sampleMs: 200 });
  c.dispose();
  return r;
}

async function compareRows(rt: DawnRuntime, tf: TF | null, shapes: Shape[], samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const s of shapes) {
    const ours = await timeOurs(rt, s, samples);
    const peer = tf ? await timeTfMatmul(tf, s.M, s.N, s.K, s.transA, s.transB, { samples, sampleMs: 200 }) : null;
    const flops = 2 * s.M * s.N * s.K;
    const g = ours.timing ? gflops(s, ours.timing.bestMs) : null;
    const gp = peer?.timing ? gflops(s, peer.timing.bestMs) : null;
    const gm = ours.timing ? gflops(s, ours.timing.medianMs) : null;
    const gpm = peer?.timing ? gflops(s, peer.timing.medianMs) : null;
    const cfg = resolveConfig(s);
    rows.push({
      shape: s.name,
      'M×N×K': `${s.M}×${s.N}×${s.K}`,
      layout: layout(s),
      check: ours.check.text,
      'ours ms (median)': ours.timing ? round(ours.timing.medianMs, 2) : null,
      ...rateCells('ours', ours.timing, flops),
      'tfjs check': peer ? peer.check.text : null,
      ...(tf ? rateCells('tfjs', peer?.timing ?? null, flops) : {}),
      'ours / tfjs (best)': g !== null && gp !== null ? round(g / gp, 2) : null,
      'ours / tfjs (median)': gm !== null && gpm !== null ? round(gm / gpm, 2) : null,
      '% of CPU peak (median)': gm === null ? null : round((100 * gm) / CPU_PEAK_GFLOPS, 1),
      config: `${cfg.lane} wg${cfg.wgL}x${cfg.wgU} ${cfg.tl}x${cfg.tu} k${cfg.ku}${cfg.vec4 ? ' vec4' : ''}`,
    });
    log(
      `${s.name} ${layout(s)}: ours ${gm?.toFixed(2) ?? ours.check.text} GFLOP/s (median)${gpm !== null && gm !== null ? `, tfjs ${gpm.toFixed(2)} (x${(gm / gpm).toFixed(2)})` : ''}`,
    );
  }
  return rows;
}

/** Float64 check of sampled rows of a grouped matmul: out[r] = x[r] · w[e(r)]ᵀ, e(r) from the offsets. */
function checkGrouped(x: Float32Array, w: Float32Array, out: Float32Array, offsets: Uint32Array, K: number, N: number): CheckOutcome {
  const outcomes: CheckOutcome[] = [];
  for (let e = 0; e + 1 < offsets.length; e++) {
    const [r0, r1] = [offsets[e]!, offsets[e + 1]!];
    if (r1 === r0) continue;
    // This expert's rows as an [r1 - r0, K] · [N, K]ᵀ product.
    outcomes.push(
      checkMatmulSampled(
        x.subarray(r0 * K, r1 * K),
        w.subarray(e * N * K, (e + 1) * N * K),
        out.subarray(r0 * N, r1 * N),
        { M: r1 - r0, N, K, transB: true },
        32,
        e + 1,
      ),
    );
  }
  return combineOutcomes(...outcomes);
}

/** Grouped expert matmul (8 experts, uneven counts) vs one matmul dispatch per expert. */
async function groupedRows(rt: DawnRuntime, samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const E = 8,
    R = 2048,
    K = 384,
    N = 768;
  // Uneven but fixed routing: 512, 384, 320, 256, 224, 192, 128, 32 rows.
  const counts = [512, 384, 320, 256, 224, 192, 128, 32];
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const x = randomTensor(rt, [R, K]);
  const w = randomTensor(rt, [E, N, K]);
  const off = rt.upload(offsets, [E + 1], 'u32');
  const out = rt.empty([R, N]);
  const one = await timeCase(
    rt,
    {
      key: 'grouped one dispatch',
      record: () => void groupedMatmul(x, w, off, { out }),
      check: async () => {
        rt.fill(out, NaN);
        groupedMatmul(x, w, off, { out });
        return checkGrouped(randomHost(R * K), randomHost(E * N * K), await out.readF32(), offsets, K, N);
      },
    },
    { samples, sampleMs: 200 },
  );
  // Per-expert baseline: separate row blocks and weights, one dispatch each.
  const xs = counts.map((c) => randomTensor(rt, [c, K]));
  const ws = counts.map(() => randomTensor(rt, [N, K]));
  const outs = counts.map((c) => rt.empty([c, N]));
  const per = await timeCase(
    rt,
    {
      key: 'grouped per expert',
      record: () => counts.forEach((_, e) => void matmul(xs[e]!, ws[e]!, { transB: true, out: outs[e]! })),
      check: async () => {
        const got: CheckOutcome[] = [];
        for (const [e, c] of counts.entries()) {
          rt.fill(outs[e]!, NaN);
          matmul(xs[e]!, ws[e]!, { transB: true, out: outs[e]! });
          got.push(checkMatmulSampled(randomHost(c * K), randomHost(N * K), await outs[e]!.readF32(), { M: c, N, K, transB: true }, 32, e + 1));
        }
        return combineOutcomes(...got);
      },
    },
    { samples, sampleMs: 200 },
  );
  const flops = 2 * R * N * K;
  for (const t of [x, w, off, out, ...xs, ...ws, ...outs]) t.dispose();
  const row = (method: string, r: typeof one): BenchRow => ({
    method,
    check: r.check.text,
    'ms (median)': r.timing ? round(r.timing.medianMs, 2) : null,
    ...rateCells('', r.timing, flops),
  });
  log(
    `grouped: one dispatch ${one.timing ? gflops({ M: R, N, K }, one.timing.medianMs).toFixed(2) : one.check.text}, per expert ${per.timing ? gflops({ M: R, N, K }, per.timing.medianMs).toFixed(2) : per.check.text} GFLOP/s (median)`,
  );
  return [row('groupedMatmul, one dispatch', one), row('8 matmul dispatches (one per expert)', per)];
}

/** The same products with f32 and f16 storage (f32 accumulation): what f16 operands cost or save. */
export async function precisionRows(rt: DawnRuntime, shapes: Shape[], samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const kinds: Precision[] = [F32, { name: 'f16 in, f32 out', a: 'f16', b: 'f16', out: 'f32' }, { name: 'f16 in/out', a: 'f16', b: 'f16', out: 'f16' }];
  const rows: BenchRow[] = [];
  for (const s of shapes) {
    const row: BenchRow = { shape: s.name, 'M×N×K': `${s.M}×${s.N}×${s.K}`, layout: layout(s) };
    let base: number | null = null;
    for (const p of kinds) {
      const r = await timeOurs(rt, s, samples, undefined, p);
      const g = r.timing ? gflops(s, r.timing.medianMs) : null;
      if (p === F32) base = g;
      row[`${p.name} check`] = r.check.text;
      Object.assign(row, rateCells(p.name, r.timing, 2 * s.M * s.N * s.K));
      if (p !== F32) row[`${p.name} / f32 (median)`] = g !== null && base !== null ? round(g / base, 2) : null;
    }
    log(`precision ${s.name} ${layout(s)}: ${JSON.stringify(row)}`);
    rows.push(row);
  }
  return rows;
}

/** The shapes of the variant progression (also timed per driver by bench/mesa-lane.ts). */
export const VARIANT_SHAPES: readonly Shape[] = [
  { name: '512³ x·Wᵀ', M: 512, N: 512, K: 512, transA: false, transB: true },
  { name: 'expert up', M: TOKENS, N: 768, K: 384, transA: false, transB: true },
];

async function variantRows(rt: DawnRuntime, shapes: readonly Shape[], samples: number, log: (m: string) => void): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [name, cfg] of Object.entries(VARIANTS)) {
    const row: BenchRow = { variant: name };
    for (const s of shapes) {
      const r = await timeOurs(rt, s, samples, cfg);
      row[`${s.name} check`] = r.check.text;
      Object.assign(row, rateCells(s.name, r.timing, 2 * s.M * s.N * s.K));
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
    `GFLOP/s from the best and from the median of ${samples} samples, with the samples' min–max ms; each sample records N iterations in one submit, then waits.`,
    "check: our output (and the tfjs peer's) against float64 on 256 sampled entries, once per shape and configuration, each within K·2^-23·Σ|a·b| (+ half an f16 ulp for f16 output); a wrong one is not timed.",
    `CPU fp32 peak ${CPU_PEAK_GFLOPS} GFLOP/s (2 cores). The CPU is shared with other processes while this runs: absolute numbers are noisy, ratios within one row less so.`,
    peerNote,
  ];
  results.push({ title: 'cubes (A·B)', rows: await compareRows(rt, tf, ctx.quick ? cubes.slice(0, 2) : cubes, samples, ctx.log), notes: note });
  results.push({
    title: `TimeMoE-50M linear layers, ${T} tokens (x·Wᵀ)`,
    rows: await compareRows(rt, tf, ctx.quick ? model.slice(0, 1) : model, samples, ctx.log),
    notes: note,
  });
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
  const vShapes = VARIANT_SHAPES;
  results.push({
    title: 'variant progression (x·Wᵀ layout)',
    rows: await variantRows(rt, ctx.quick ? vShapes.slice(0, 1) : vShapes, ctx.quick ? 2 : 3, ctx.log),
    notes: ['See bench/results/matmul-variants.md for what each variant changes and why it helped or not.'],
  });
  return results;
}
