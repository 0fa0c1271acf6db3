/**
 * Memory-bound kernels in GB/s (bytes each kernel must read + write, per second), next to the
 * machine's practical limit measured in the same run (a large host memcpy), plus causal attention
 * forward + backward at TimeMoE-50M's head shape in GFLOP/s.
 */
import { getRuntime } from '../src/kernels/runtime.ts';
import type { Tensor } from '../src/kernels/tensor.ts';
import { add, silu } from '../src/kernels/elementwise.ts';
import { softmax } from '../src/kernels/softmax.ts';
import { rmsnorm } from '../src/kernels/rmsnorm.ts';
import { adamw } from '../src/kernels/adamw.ts';
import { sumSquaresMany } from '../src/kernels/reduce.ts';
import { finiteStatsMany } from '../src/kernels/guard.ts';
import { routerTopK } from '../src/kernels/router.ts';
import { attention, attentionBackward } from '../src/kernels/attention.ts';
import { round, timeGpu, type BenchRow, type SuiteContext, type SuiteResult } from './harness.ts';

/** Host memcpy bandwidth (read + write bytes per second), best of a few runs. */
function hostCopyGBs(): number {
  const n = 1 << 24;
  const a = new Float32Array(n).fill(1);
  const b = new Float32Array(n);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    b.set(a);
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * n * 4) / (best * 1e6);
}

export async function run(ctx: SuiteContext): Promise<SuiteResult[]> {
  const rt = await getRuntime({ announce: false });
  const limit = hostCopyGBs();
  const N = ctx.quick ? 1 << 18 : 1 << 20;
  const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * s);
  const owned: Tensor[] = [];
  const t = (shape: number[], s = 1) => {
    const x = rt.upload(rand(shape.reduce((p, q) => p * q, 1), s), shape);
    owned.push(x);
    return x;
  };
  const opts = { sampleMs: ctx.quick ? 60 : 150, samples: ctx.quick ? 3 : 5 };
  const rows: BenchRow[] = [];
  const bench = async (name: string, bytes: number, record: () => Tensor[] | void) => {
    const tm = await timeGpu(rt, () => record()?.forEach((o) => o.dispose()), opts);
    const gbs = bytes / (tm.bestMs * 1e6);
    rows.push({ kernel: name, 'MiB moved': round(bytes / 2 ** 20, 1), 'best ms': round(tm.bestMs, 3), 'median ms': round(tm.medianMs, 3), 'GB/s': round(gbs, 2), '% of host memcpy': round((100 * gbs) / limit, 1) });
    ctx.log(`${name}: ${round(gbs, 2)} GB/s`);
  };

  const x = t([N / 256, 256]);
  const y = t([N / 256, 256]);
  await bench(`add [${N / 256}, 256]`, 3 * N * 4, () => [add(x, y)]);
  await bench(`silu [${N}]`, 2 * N * 4, () => [silu(x)]);
  const w = t([256]);
  await bench(`rmsnorm [${N / 256}, 256]`, 2 * N * 4, () => {
    const r = rmsnorm(x, w);
    return [r.y, r.rstd];
  });
  const logits = t([N / 8, 8], 2);
  await bench(`softmax [${N / 8}, 8] (router width)`, 2 * N * 4, () => [softmax(logits)]);
  await bench(`router top-2 [${N / 8}, 8]`, N * 4 + N * 4 + (N / 8) * 2 * 8, () => {
    const r = routerTopK(logits, { k: 2 });
    return [r.probs, r.idx, r.weights];
  });
  const p = t([N]);
  const g = t([N], 0.01);
  const m = t([N], 0);
  const v = t([N], 0);
  rt.fill(v, 1e-4);
  await bench(`adamw [${N}]`, 7 * N * 4, () => adamw(p, g, m, v, { lr: 1e-4, step: 1 }));
  const many = Array.from({ length: 40 }, () => t([N / 40 | 0]));
  const manyBytes = many.reduce((a, q) => a + q.size * 4, 0);
  await bench('sumSquaresMany (40 tensors, grad norm)', manyBytes, () => [sumSquaresMany(many)]);
  await bench('finiteStatsMany (40 tensors, guards)', manyBytes, () => [finiteStatsMany(many)]);

  // Attention at TimeMoE-50M's head shape: B=4, T=256 (quick: T=128), H=12, hd=32.
  const d = { B: 4, T: ctx.quick ? 128 : 256, H: 12, hd: 32 };
  const shape = [d.B, d.T, d.H * d.hd];
  const [q, k, vv, dO] = [t(shape), t(shape), t(shape), t(shape)];
  const pairs = (d.B * d.H * d.T * (d.T + 1)) / 2;
  const attnRows: BenchRow[] = [];
  const fwd = await timeGpu(rt, () => {
    const r = attention(q!, k!, vv!, d);
    r.o.dispose();
    r.lse.dispose();
  }, { ...opts, maxIters: 20 });
  const both = await timeGpu(rt, () => {
    const r = attention(q!, k!, vv!, d);
    const gr = attentionBackward(dO!, q!, k!, vv!, r.o, r.lse, d);
    for (const o of [r.o, r.lse, gr.dq, gr.dk, gr.dv]) o.dispose();
  }, { ...opts, maxIters: 10 });
  // Forward: 2 dots of hd per (query, key) pair = 4·hd flops; backward recomputes P and does 4 more dots: 8·hd.
  attnRows.push({ pass: 'forward', shape: `B${d.B} T${d.T} H${d.H} hd${d.hd}`, 'best ms': round(fwd.bestMs, 2), 'GFLOP/s': round((pairs * 4 * d.hd) / (fwd.bestMs * 1e6), 2) });
  attnRows.push({ pass: 'forward + backward', shape: `B${d.B} T${d.T} H${d.H} hd${d.hd}`, 'best ms': round(both.bestMs, 2), 'GFLOP/s': round((pairs * 12 * d.hd) / (both.bestMs * 1e6), 2) });
  for (const o of owned) o.dispose();
  return [
    { title: 'memory-bound kernels', rows, notes: [`Machine limit: host memcpy ${round(limit, 1)} GB/s (read + write), measured in this run.`, 'Bytes = what the kernel must read and write once; best of the samples (the CPU is shared).'] },
    { title: 'causal attention (fused, online softmax)', rows: attnRows, notes: ['Causal pairs only; forward 4·hd flops per pair, forward + backward 12·hd.'] },
  ];
}
