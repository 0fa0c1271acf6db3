/**
 * The node side of the prepared GPU check (bench/gpu/check.sh runs it from the bundle):
 *   caps     adapter, kernel family, f16, subgroups, subgroup-matrix shapes, limits;
 *   matmul   a sweep (f32, f16, subgroup-matrix where the adapter has it) over cubes and the
 *            TimeMoE-50M / 200M layer shapes: GFLOP/s and % of the card's peak; each timed
 *            kernel's output is checked against float64 on sampled entries first;
 *   train    small-moe and TimeMoE-50M optimizer steps (f32 and f16): ms, tokens/s;
 *   plan     the planner's peak (this device's caps) against the pool's measured peak.
 * Results go to <out>/ours.json after every section, so a run cut short keeps what it measured;
 * `--report` merges them with the PyTorch peers' JSON into gpu-check.{json,md}.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { getRuntime } from '../../src/kernels/node/dawn.ts';
import { describeFamily, type DeviceCaps } from '../../src/kernels/caps.ts';
import { matmul, type FloatDType } from '../../src/kernels/matmul.ts';
import { TILED_VARIANTS, forceMatmul, type MatmulConfigOverride } from '../../src/kernels/matmul-config.ts';
import { subgroupMatrixMatmul, subgroupMatrixShape } from './matmul-sgmatrix.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';
import { parseConfig, type TrainConfig } from '../../src/train/config.ts';
import { planRun } from '../../src/train/plan/planner.ts';
import { namedTarget, thisTarget, TARGET_NAMES, type TargetProfile } from '../../src/train/plan/targets.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { AdamW } from '../../src/optim/adamw.ts';
import { Trainer } from '../../src/train/step/trainer.ts';
import { Rng } from '../../src/util/rng.ts';
import { checkMatmulSampled, round, timeGpu, markdownTable, type BenchRow } from '../harness.ts';
import { syntheticBatch, torchConfig } from '../workloads.ts';

export interface MatmulShape {
  name: string;
  M: number;
  N: number;
  K: number;
  /** B stored [N, K] (an nn.Linear weight), as the model's projections are. */
  transB: boolean;
}

/** Tokens of a TimeMoE micro-batch (32 x 512) and the k = 2 expert rows per token. */
const TOKENS = 32 * 512;

export function matmulShapes(quick: boolean): MatmulShape[] {
  if (quick)
    return [
      { name: '256³', M: 256, N: 256, K: 256, transB: false },
      { name: 'q proj (50M, 512 tokens)', M: 512, N: 384, K: 384, transB: true },
    ];
  return [
    { name: '1024³', M: 1024, N: 1024, K: 1024, transB: false },
    { name: '4096³', M: 4096, N: 4096, K: 4096, transB: false },
    { name: '50M q_proj', M: TOKENS, N: 384, K: 384, transB: true },
    { name: '50M expert gate+up', M: 2 * TOKENS, N: 2 * 768, K: 384, transB: true },
    { name: '50M expert down', M: 2 * TOKENS, N: 384, K: 768, transB: true },
    { name: '200M q_proj', M: TOKENS, N: 768, K: 768, transB: true },
    { name: '200M expert gate+up', M: 2 * TOKENS, N: 2 * 1536, K: 768, transB: true },
    { name: '200M expert down', M: 2 * TOKENS, N: 768, K: 1536, transB: true },
  ];
}

/** The published peaks of the card this adapter is, when it is one of the target profiles. */
export function cardProfile(caps: DeviceCaps): TargetProfile | null {
  const name = `${caps.adapter.device} ${caps.adapter.description}`.toLowerCase();
  const table: [RegExp, (typeof TARGET_NAMES)[number]][] = [
    [/h200/, 'h200'],
    [/h100/, 'h100-80'],
    [/a100.*80|a100-sxm4-80/, 'a100-80'],
    [/a100/, 'a100-40'],
    [/4090/, 'rtx-4090'],
    [/3090/, 'rtx-3090'],
  ];
  for (const [re, t] of table) if (re.test(name)) return namedTarget(t as Exclude<typeof t, 'this'>);
  return null;
}

interface MatmulVariant {
  name: string;
  dtype: FloatDType;
  config?: MatmulConfigOverride;
}

/**
 * The engine's own choice in f32 and f16 storage; on the GPU family (full run) also every tiled
 * variant in f32: the numbered progression of the GPU kernel, measured in the one run a GPU gets.
 */
function variants(rt: DawnRuntime, quick: boolean): MatmulVariant[] {
  const v: MatmulVariant[] = [{ name: `f32 (${rt.policy.family} family default)`, dtype: 'f32' }];
  if (rt.caps.f16) v.push({ name: 'f16 (f32 accumulation)', dtype: 'f16' });
  if (rt.policy.family === 'gpu' && !quick) for (const [name, config] of Object.entries(TILED_VARIANTS)) v.push({ name: `f32 ${name}`, dtype: 'f32', config });
  return v;
}

/** Host values as the device stores them (f16 rounded), so the reference starts from the same numbers. */
function stored(x: Float32Array, dtype: FloatDType): Float32Array {
  return dtype === 'f16' ? x.map((v) => f16BitsToF32(f32ToF16Bits(v))) : x;
}

/** Sampled float64 check of C = A·op(B) (bench/harness.ts checkMatmulSampled, the one implementation). NaN fails. */
export function checkSampled(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  s: MatmulShape,
  out: FloatDType,
  rng: Rng,
  n = 256,
): { worst: number; ok: boolean } {
  const r = checkMatmulSampled(a, b, c, { M: s.M, N: s.N, K: s.K, transB: s.transB, f16Out: out === 'f16' }, n, 1 + rng.int(2 ** 30));
  return { worst: r.worst, ok: r.ok };
}

async function matmulSection(rt: DawnRuntime, quick: boolean, log: (m: string) => void): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const card = cardProfile(rt.caps);
  const rng = new Rng(11);
  for (const s of matmulShapes(quick)) {
    const hostA = Float32Array.from({ length: s.M * s.K }, () => rng.uniform());
    const hostB = Float32Array.from({ length: s.K * s.N }, () => rng.uniform());
    for (const v of variants(rt, quick)) {
      const a = rt.upload(hostA, [s.M, s.K], v.dtype, 'A');
      const b = rt.upload(hostB, s.transB ? [s.N, s.K] : [s.K, s.N], v.dtype, 'B');
      const c: Tensor = rt.empty([s.M, s.N], v.dtype, 'C');
      rt.fill(c, NaN); // poisoned: an unwritten output fails the check
      const opts = { transB: s.transB, out: c };
      // A forced variant goes through the policy (the one override mechanism), the default does not.
      const run = () => void rt.withPolicy(v.config ? forceMatmul(v.config) : {}, () => matmul(a, b, opts));
      run();
      const check = checkSampled(stored(hostA, v.dtype), stored(hostB, v.dtype), await c.readF32(), s, v.dtype, rng);
      const t = check.ok ? await timeGpu(rt, run, { samples: quick ? 2 : 5, sampleMs: quick ? 30 : 100 }) : null;
      const gflops = t ? (2 * s.M * s.N * s.K) / t.medianMs / 1e6 : null;
      const peak = card?.peak ? (v.dtype === 'f32' ? card.peak.f32 : card.peak.f16) : null;
      rows.push({
        shape: s.name,
        M: s.M,
        N: s.N,
        K: s.K,
        variant: v.name,
        checked: check.ok ? `ok (worst ${round(check.worst, 3)} of bound)` : `WRONG (worst ${check.worst.toPrecision(3)} x bound)`,
        'ms (median)': t ? round(t.medianMs, 4) : null,
        'GFLOP/s': gflops === null ? null : round(gflops, 1),
        '% of peak': gflops !== null && peak ? round((100 * gflops * 1e9) / peak, 1) : null,
      });
      log(`matmul ${s.name} ${v.name}: ${rows[rows.length - 1]!['GFLOP/s'] ?? '-'} GFLOP/s ${rows[rows.length - 1]!.checked}`);
      for (const x of [a, b, c]) x.dispose();
    }
  }
  return rows;
}

/**
 * The tensor-core kernel where the device has it: checked against float64 on sampled entries,
 * then timed (f16 operands, f32 accumulation, B not transposed). Compile errors are recorded, not
 * thrown: the syntax of the experimental extension is what this run finds out.
 */
async function sgmatrixSection(rt: DawnRuntime, quick: boolean, log: (m: string) => void): Promise<BenchRow[]> {
  const shape = subgroupMatrixShape(rt.caps);
  if (!shape) return [{ shape: '-', note: `no f16 subgroup-matrix configuration on this device (${rt.caps.subgroupMatrix.length} configs)` }];
  const card = cardProfile(rt.caps);
  const rng = new Rng(13);
  const rows: BenchRow[] = [];
  const sizes = quick ? [256] : [1024, 4096];
  const shapes: MatmulShape[] = [
    ...sizes.map((n) => ({ name: `${n}³`, M: n, N: n, K: n, transB: false })),
    ...(quick ? [] : [{ name: '50M expert gate+up', M: 2 * TOKENS, N: 1536, K: 384, transB: false }]),
  ];
  for (const s of shapes) {
    const hostA = Float32Array.from({ length: s.M * s.K }, () => rng.uniform());
    const hostB = Float32Array.from({ length: s.K * s.N }, () => rng.uniform());
    const a = rt.upload(hostA, [s.M, s.K], 'f16', 'A');
    const b = rt.upload(hostB, [s.K, s.N], 'f16', 'B');
    try {
      const c = subgroupMatrixMatmul(rt, a, b);
      const check = checkSampled(stored(hostA, 'f16'), stored(hostB, 'f16'), await c.readF32(), s, 'f32', rng);
      c.dispose();
      const t = check.ok ? await timeGpu(rt, () => subgroupMatrixMatmul(rt, a, b).dispose(), { samples: quick ? 2 : 5, sampleMs: 100 }) : null;
      const gflops = t ? (2 * s.M * s.N * s.K) / t.medianMs / 1e6 : null;
      rows.push({
        shape: s.name,
        tile: `${shape.M}x${shape.N}x${shape.K}`,
        checked: check.ok ? `ok (worst ${round(check.worst, 3)} of bound)` : `WRONG (${check.worst.toPrecision(3)} x bound)`,
        'ms (median)': t ? round(t.medianMs, 4) : null,
        'GFLOP/s': gflops === null ? null : round(gflops, 1),
        '% of f16 peak': gflops !== null && card?.peak ? round((100 * gflops * 1e9) / card.peak.f16, 1) : null,
      });
    } catch (e) {
      rows.push({ shape: s.name, tile: `${shape.M}x${shape.N}x${shape.K}`, checked: `FAILED: ${e instanceof Error ? e.message.slice(0, 400) : String(e)}` });
    }
    log(`sgmatrix ${s.name}: ${String(rows[rows.length - 1]!.checked)}`);
    a.dispose();
    b.dispose();
  }
  return rows;
}

/** A training config of a preset on synthetic data (data loading is not what is timed). */
export function trainConfig(preset: string, B: number, T: number, activations: 'f32' | 'f16'): TrainConfig {
  return parseConfig({
    model: { preset, horizons: preset === 'small-moe' ? [1, 8, 32] : [1, 8, 32, 64] },
    data: { source: { kind: 'synthetic', series: 2, length: T + 2 }, contextLength: T },
    optim: { lr: 1e-3 },
    schedule: { steps: 1000, microBatch: B },
    loss: { zCoef: 1e-3 },
    precision: { activations },
  });
}

export interface TrainCase {
  name: string;
  preset: string;
  B: number;
  T: number;
  activations: 'f32' | 'f16';
}

export function trainCases(quick: boolean, caps: DeviceCaps): TrainCase[] {
  const cases: TrainCase[] = quick
    ? [
        { name: 'small-moe B4 T32', preset: 'small-moe', B: 4, T: 32, activations: 'f32' },
        { name: 'TimeMoE-50M B1 T64', preset: 'timemoe-50m', B: 1, T: 64, activations: 'f32' },
      ]
    : [
        { name: 'small-moe B16 T64', preset: 'small-moe', B: 16, T: 64, activations: 'f32' },
        { name: 'TimeMoE-50M B16 T512', preset: 'timemoe-50m', B: 16, T: 512, activations: 'f32' },
        { name: 'TimeMoE-50M B16 T512', preset: 'timemoe-50m', B: 16, T: 512, activations: 'f16' },
      ];
  return cases.filter((c) => c.activations === 'f32' || caps.f16);
}

async function trainSection(rt: DawnRuntime, quick: boolean, log: (m: string) => void): Promise<{ rows: BenchRow[]; plans: BenchRow[] }> {
  const rows: BenchRow[] = [];
  const plans: BenchRow[] = [];
  for (const c of trainCases(quick, rt.caps)) {
    const cfg = trainConfig(c.preset, c.B, c.T, c.activations);
    const plan = planRun(cfg, { target: thisTarget(rt.caps), budgetBytes: Number.MAX_SAFE_INTEGER, reserveBytes: 0, suggestions: false });
    const model = new TimeMoeModel(rt, cfg.model, 0);
    const opt = new AdamW(model.params, cfg.optim);
    const trainer = new Trainer(rt, model, opt, cfg);
    const batch = syntheticBatch(c.B, c.T, 5);
    const warm = quick ? 1 : 3;
    const steps = quick ? 2 : 8;
    const ms: number[] = [];
    let peak = 0;
    let loss = NaN;
    for (let s = 1; s <= warm + steps; s++) {
      const m = await trainer.step(s, [batch]);
      if (s > warm) ms.push(m.ms);
      if (s === 2 || s === 3) peak = Math.max(peak, m.peakBytes);
      loss = m.loss;
    }
    const median = [...ms].sort((x, y) => x - y)[Math.floor(ms.length / 2)]!;
    rows.push({
      model: c.name,
      activations: c.activations,
      parameters: model.parameterCount,
      'ms/step (median)': round(median, 2),
      'tokens/s': Math.round((c.B * c.T * 1000) / median),
      'loss (last)': round(loss, 4),
      dispatches: plan.dispatchesPerStep,
      torchConfig: torchConfig(cfg),
    });
    plans.push({
      model: c.name,
      activations: c.activations,
      'planned peak (B)': plan.peakBytes,
      'measured peak (B)': peak,
      equal: plan.peakBytes === peak ? 'yes' : 'NO',
    });
    log(`train ${c.name} ${c.activations}: ${round(median, 2)} ms/step; plan ${plan.peakBytes} vs measured ${peak}`);
    trainer.dispose();
    opt.dispose();
    model.dispose();
  }
  return { rows, plans };
}

const OursSchema = z.object({
  caps: z.record(z.string(), z.unknown()).optional(),
  matmul: z.array(z.record(z.string(), z.unknown())).optional(),
  train: z.array(z.record(z.string(), z.unknown())).optional(),
  plan: z.array(z.record(z.string(), z.unknown())).optional(),
  sgmatrix: z.array(z.record(z.string(), z.unknown())).optional(),
  errors: z.array(z.string()).default([]),
});

const TorchMatmulSchema = z.object({
  device: z.string(),
  torch: z.string(),
  rows: z.array(z.object({ name: z.string(), dtype: z.string(), ms: z.number(), gflops: z.number() })),
});
const TorchTrainSchema = z.object({ ms_median: z.number(), tokens: z.number(), device: z.string().optional(), loss: z.number().nullable().optional() });

function readJson<T>(path: string, schema: z.ZodType<T>): T | null {
  if (!existsSync(path)) return null;
  const r = schema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  return r.success ? r.data : null;
}

/** gpu-check.json and gpu-check.md from ours.json and the peers' JSON files in `dir`. */
export function report(dir: string): string {
  const ours = readJson(join(dir, 'ours.json'), OursSchema) ?? { errors: ['ours.json missing'] };
  const tm = readJson(join(dir, 'torch-matmul.json'), TorchMatmulSchema);
  const mm = (ours.matmul ?? []).map((r) => {
    const dtype = String(r.variant).startsWith('f16') ? 'f16' : 'f32';
    const peer = tm?.rows.find((p) => p.name === r.shape && p.dtype === dtype);
    const g = typeof r['GFLOP/s'] === 'number' ? r['GFLOP/s'] : null;
    return { ...r, 'torch GFLOP/s': peer ? round(peer.gflops, 1) : null, 'ours / torch': peer && g ? round(g / peer.gflops, 3) : null } as BenchRow;
  });
  const tr = (ours.train ?? []).map((r, i) => {
    const peer = readJson(join(dir, `torch-train-${i}.json`), TorchTrainSchema);
    const ms = typeof r['ms/step (median)'] === 'number' ? r['ms/step (median)'] : null;
    const { torchConfig: _drop, ...row } = r;
    return {
      ...row,
      'torch eager fp32 ms/step': peer ? round(peer.ms_median, 2) : null,
      'torch device': peer?.device ?? null,
      'torch / ours (speed-up)': peer && ms ? round(peer.ms_median / ms, 3) : null,
    } as BenchRow;
  });
  const merged = { ...ours, matmul: mm, train: tr, torchMatmul: tm };
  writeFileSync(join(dir, 'gpu-check.json'), `${JSON.stringify(merged, null, 2)}\n`);
  const caps = ours.caps ?? {};
  const md = [
    '# GPU check',
    '',
    `${String(caps.date ?? '')} · ${String(caps.adapterName ?? 'unknown adapter')} · ${String(caps.kernels ?? '')}`,
    '',
    '## Caps',
    '',
    '```json',
    JSON.stringify(caps, null, 2),
    '```',
    '',
    '## Matmul (checked against float64 on sampled entries before timing)',
    '',
    markdownTable(mm as BenchRow[]),
    `PyTorch peer: ${tm ? `${tm.torch} on ${tm.device}${tm.device === 'cpu' ? ' (f32 only)' : ', f32 with TF32 off, f16 on tensor cores'}` : 'not run'}. % of peak: of the card's published dense peak (src/train/plan/targets.ts), f32 or f16 tensor-core.`,
    '',
    '## Subgroup-matrix matmul (tensor cores; f16 operands, f32 accumulation; not used by the engine until it passes here)',
    '',
    markdownTable((ours.sgmatrix ?? []) as BenchRow[]),
    '',
    '## Training step (Trainer.step: forward, losses, backward, guards, clip, AdamW, one readback)',
    '',
    markdownTable(tr),
    'Peer: scripts/golden/timemoe_ref.py (the same model; experts looped as in Time-MoE) in PyTorch eager fp32 (on CUDA: TF32 off), AdamW and clipping (bench/peers/torch_train.py); an f16 row of ours is compared with the same fp32 peer.',
    '',
    '## Planned vs measured peak (this device)',
    '',
    markdownTable((ours.plan ?? []) as BenchRow[]),
    ...(ours.errors.length ? ['', '## Errors', '', ...ours.errors.map((e) => `- ${e}`)] : []),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'gpu-check.md'), md);
  return md;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command()
    .name('gpu-check')
    .requiredOption('--out <dir>', 'folder for ours.json (and, with --report, gpu-check.{json,md})')
    .option('--quick', 'small shapes (a smoke test on lavapipe)')
    .option('--sections <list>', 'matmul,sgmatrix,train (default all)', 'matmul,sgmatrix,train')
    .option('--report', 'merge ours.json with the PyTorch peers and write gpu-check.{json,md}')
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch {
    return 2;
  }
  const o = program.opts<{ out: string; quick?: boolean; sections: string; report?: boolean }>();
  mkdirSync(o.out, { recursive: true });
  if (o.report) {
    console.log(report(o.out));
    return 0;
  }
  const log = (m: string) => console.error(`[gpu-check] ${m}`);
  const rt = await getRuntime();
  const result: z.infer<typeof OursSchema> = { errors: [] };
  const save = () => writeFileSync(join(o.out, 'ours.json'), `${JSON.stringify(result, null, 2)}\n`);
  const a = rt.caps.adapter;
  result.caps = {
    ...rt.caps,
    date: new Date().toISOString(),
    adapterName: `${a.vendor} ${a.device || a.description} (${a.backend})`,
    kernels: describeFamily(rt.caps),
  };
  save();
  const sections = o.sections.split(',');
  const attempt = async (name: string, fn: () => Promise<void>) => {
    if (!sections.includes(name)) return;
    try {
      await fn();
    } catch (e) {
      result.errors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      log(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    save();
  };
  await attempt('matmul', async () => {
    result.matmul = await matmulSection(rt, !!o.quick, log);
  });
  await attempt('sgmatrix', async () => {
    result.sgmatrix = await sgmatrixSection(rt, !!o.quick, log);
  });
  await attempt('train', async () => {
    const t = await trainSection(rt, !!o.quick, log);
    result.train = t.rows;
    result.plan = t.plans;
  });
  // The peers read the shapes and configs from here.
  writeFileSync(join(o.out, 'shapes.json'), JSON.stringify(matmulShapes(!!o.quick)));
  writeFileSync(
    join(o.out, 'train-cases.json'),
    JSON.stringify((result.train ?? []).map((r, i) => ({ i, config: r.torchConfig, ...trainCases(!!o.quick, rt.caps)[i] }))),
  );
  return result.errors.length ? 1 : 0;
}
