/**
 * Attention's f32 error against float64 as the context grows, both kernels (docs/KERNELS.md,
 * "Accuracy of long sums"). Two measurements:
 *
 *   npx tsx scripts/attention-accuracy.ts [--T 64,256,1024,2048] [--hd 8] [--heads 2] [--seeds 12] [--dump DIR]
 *
 * runs forward and backward of both kernels on fresh inputs (q, k ~ N(0, 1.5²), v, dO ~ N(0, 1),
 * as test/kernels/attention.test.ts) and prints, per T and kernel, the median and the largest over
 * seeds of max|err| / max|ref| and of rms(err) / rms(ref) for o, lse, dq, dk, dv against
 * test/reference/attention-ref.ts.
 * --dump DIR also writes each case's inputs and float64 results there, for
 * `/usr/bin/python3 scripts/golden/attention_accuracy.py peer DIR` (PyTorch f32 on the same inputs).
 *
 *   npx tsx scripts/attention-accuracy.ts --model FILE...
 *
 * runs the Time-MoE forward of a `scripts/golden/attention_accuracy.py model` file under each kernel
 * and prints its predictions' error against PyTorch float64, beside PyTorch float32's.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { DawnRuntime } from '../src/kernels/runtime.ts';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { attention, attentionBackward } from '../src/kernels/attention.ts';
import { Graph } from '../src/autograd/graph.ts';
import { Var } from '../src/autograd/variable.ts';
import { attentionBackwardRef, attentionRef } from '../test/reference/attention-ref.ts';
import { relRms } from '../test/reference/compare.ts';
import { goldenModel } from '../test/model/golden-model.ts';
import { Rng } from '../src/util/rng.ts';
import { median } from '../src/diagnose/stats.ts';

const KERNELS = ['rows', 'tiled'] as const;
const OUTPUTS = ['o', 'lse', 'dq', 'dk', 'dv'] as const;

/** max|a - e| / max|e|: the largest element's error, as expectClose's relativeToMax bounds measure it. */
function relMax(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let m = 0;
  let err = 0;
  for (let i = 0; i < e.length; i++) {
    m = Math.max(m, Math.abs(e[i]!));
    err = Math.max(err, Math.abs(a[i]! - e[i]!));
  }
  return err / m;
}

const fmt = (x: number): string => x.toExponential(2);

function option(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

async function kernelErrors(rt: DawnRuntime, args: string[]): Promise<void> {
  const Ts = option(args, '--T', '64,256,1024,2048').split(',').map(Number);
  const hd = Number(option(args, '--hd', '8'));
  const H = Number(option(args, '--heads', '2'));
  const seeds = Number(option(args, '--seeds', '12'));
  const dump = args.includes('--dump') ? option(args, '--dump', '') : null;
  const cases: { T: number; H: number; hd: number; seed: number; inputs: string; ref: string }[] = [];
  if (dump) mkdirSync(dump, { recursive: true });
  for (const T of Ts) {
    const d = { B: 1, T, H, hd };
    const n = T * H * hd;
    // Per kernel and output: max|err|/max|ref| and rms(err)/rms(ref) of every seed.
    const errs = new Map<string, { max: number[]; rms: number[] }[]>(KERNELS.map((k) => [k, OUTPUTS.map(() => ({ max: [], rms: [] }))]));
    for (let seed = 1; seed <= seeds; seed++) {
      const rng = new Rng(seed * 7919 + T);
      const draw = (std: number): Float64Array => Float64Array.from(Float32Array.from(rng.normalArray(n, std)));
      const [q, k, v, dO] = [draw(1.5), draw(1.5), draw(1), draw(1)];
      const ref = attentionRef(q, k, v, d);
      const bref = attentionBackwardRef(dO, q, k, v, d);
      const refs = { o: ref.o, lse: ref.lse, dq: bref.dq, dk: bref.dk, dv: bref.dv };
      if (dump) {
        const c = { T, H, hd, seed, inputs: `in-${T}-${seed}.f32`, ref: `ref-${T}-${seed}.f64` };
        writeFileSync(join(dump, c.inputs), Float32Array.from([...q, ...k, ...v, ...dO]));
        writeFileSync(join(dump, c.ref), Float64Array.from(OUTPUTS.flatMap((o) => [...refs[o]])));
        cases.push(c);
      }
      for (const kernel of KERNELS) {
        const shape = [1, T, H * hd];
        const [tq, tk, tv, tdo] = [q, k, v, dO].map((a) => rt.upload(Float32Array.from(a), shape));
        const r = rt.withPolicy({ attention: { kernel } }, () => {
          const f = attention(tq!, tk!, tv!, d);
          return { ...f, ...attentionBackward(tdo!, tq!, tk!, tv!, f.o, f.lse, d) };
        });
        const e = errs.get(kernel)!;
        for (const [i, o] of OUTPUTS.entries()) {
          const got = await r[o].readF32();
          e[i]!.max.push(relMax(got, refs[o]));
          e[i]!.rms.push(relRms(got, refs[o]));
        }
        for (const t of [tq!, tk!, tv!, tdo!, r.o, r.lse, r.dq, r.dk, r.dv]) t.dispose();
      }
    }
    for (const kernel of KERNELS) {
      const e = errs.get(kernel)!;
      for (const m of ['max', 'rms'] as const) {
        const cells = OUTPUTS.map((o, i) => `${o} ${fmt(median(e[i]![m]))} (max ${fmt(Math.max(...e[i]![m]))})`);
        const what = m === 'max' ? 'max|err|/max|ref|' : 'rms(err)/rms(ref)';
        console.log(`T=${T} H=${H} hd=${hd} ${kernel}, ${what}, median over ${seeds} seeds: ${cells.join('  ')}`);
      }
    }
  }
  if (dump) writeFileSync(join(dump, 'cases.json'), JSON.stringify(cases));
}

const Fixture = z.object({
  config: z.object({
    hidden: z.number(),
    layers: z.number(),
    heads: z.number(),
    experts: z.number(),
    top_k: z.number(),
    moe_intermediate: z.number(),
    shared_intermediate: z.number(),
    horizons: z.array(z.number()),
    rope_theta: z.number(),
    rms_eps: z.number(),
    batch: z.number(),
    seq_len: z.number(),
  }),
  series: z.array(z.array(z.number())),
  params: z.record(z.string(), z.object({ shape: z.array(z.number()), data: z.array(z.number()) })),
  pred64: z.record(z.string(), z.array(z.number())),
  pred32: z.record(z.string(), z.array(z.number())),
  top_idx: z.array(z.array(z.number())),
});

async function modelErrors(rt: DawnRuntime, files: string[]): Promise<void> {
  for (const file of files) {
    const fx = Fixture.parse(JSON.parse(readFileSync(file, 'utf8')));
    const c = fx.config;
    const [B, T] = [c.batch, c.seq_len];
    const N = B * T;
    const model = goldenModel(rt, c, fx.params);
    const inputs = new Float32Array(N);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) inputs[b * T + t] = fx.series[b]![t]!;
    const flat = (p: Record<string, number[]>): number[] => c.horizons.flatMap((h) => p[String(h)]!);
    const ref = flat(fx.pred64);
    const line = [`${file}: T=${T} B=${B}, predictions max|err|/max|ref| vs PyTorch float64: PyTorch f32 ${fmt(relMax(flat(fx.pred32), ref))}`];
    for (const kernel of KERNELS) {
      const graph = new Graph(false);
      const x = graph.adopt(new Var(rt.upload(inputs, [N, 1], 'f32', 'inputs')));
      const out = rt.withPolicy({ attention: { kernel } }, () => graph.run(() => model.forward(x, { batch: B, seqLen: T })));
      for (const p of out.predictions) graph.keep(p);
      const preds = (await Promise.all(out.predictions.map((p) => p.data.readF32()))).flatMap((a) => [...a]);
      const idx = await Promise.all(out.routing.map((r) => r.idx.read()));
      const sameRouting = idx.every((a, l) => a.length === fx.top_idx[l]!.length && a.every((v, i) => v === fx.top_idx[l]![i]));
      line.push(`engine (${kernel}) ${fmt(relMax(preds, ref))}${sameRouting ? '' : ' (top-k differs: not comparable)'}`);
      graph.dispose();
    }
    console.log(line.join(', '));
    model.dispose();
  }
}

const args = process.argv.slice(2);
const rt = await getRuntime({ announce: false });
const modelAt = args.indexOf('--model');
if (modelAt >= 0) await modelErrors(rt, args.slice(modelAt + 1));
else await kernelErrors(rt, args);
process.exit(0);
