/**
 * Memory-bound kernels in GB/s (bytes each kernel must read + write, per second), next to the
 * machine's practical limit measured in the same run (a large host memcpy), plus causal attention
 * forward + backward at TimeMoE-50M's head shape in GFLOP/s.
 *
 * Every kernel stem (docs/KERNELS.md) has a case here keyed by its stem (the `stem` column; the
 * first argument of bench()), checked against its float64 reference (test/reference/<stem>-ref.ts)
 * before it is timed; test/architecture/kernel-stems.test.ts checks that none is missing. Sweeps
 * of a stem's variants live in bench/<stem>.bench.ts where one exists (matmul, dispatch).
 */
import { getRuntime } from '../src/kernels/node/dawn.ts';
import type { Tensor } from '../src/kernels/tensor.ts';
import { add, silu } from '../src/kernels/elementwise.ts';
import { rmsnorm } from '../src/kernels/rmsnorm.ts';
import { adamw } from '../src/kernels/adamw.ts';
import { sumSquaresMany } from '../src/kernels/reduce.ts';
import { finiteStatsMany } from '../src/kernels/guard.ts';
import { routerTopK } from '../test/support/router-topk.ts';
import { attention, attentionBackward } from '../src/kernels/attention.ts';
import { swiglu } from '../src/kernels/swiglu.ts';
import { rope } from '../src/kernels/rope.ts';
import { meanPoolBackward } from '../src/kernels/mean-pool.ts';
import { huberLoss, TIME_MOE_HUBER_DELTA } from '../src/kernels/loss.ts';
import { routerZLoss } from '../src/kernels/moe-loss.ts';
import { disposeDispatch, gatherRows, routeAndDispatch } from '../src/kernels/dispatch.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { adamScalars, createTrainState } from '../src/kernels/train-state.ts';
import {
  combineOutcomes,
  compareOutput,
  round,
  timeCase,
  timingCells,
  type BenchRow,
  type CheckOutcome,
  type SuiteContext,
  type SuiteResult,
} from './harness.ts';
import { silu as siluRef } from '../test/reference/elementwise-ref.ts';
import { sumSquares } from '../test/reference/reduce-ref.ts';
import { statsRef } from '../test/reference/guard-ref.ts';
import { rmsnormRef } from '../test/reference/rmsnorm-ref.ts';
import { routerRef } from '../test/reference/router-ref.ts';
import { adamwRef } from '../test/reference/adamw-ref.ts';
import { attentionBackwardRef, attentionRef } from '../test/reference/attention-ref.ts';
import { fillRef } from '../test/reference/fill-ref.ts';
import { swigluRef } from '../test/reference/swiglu-ref.ts';
import { ropeRef } from '../test/reference/rope-ref.ts';
import { meanPoolBackwardRef } from '../test/reference/mean-pool-ref.ts';
import { huberLossRef } from '../test/reference/loss-ref.ts';
import { zLossRef } from '../test/reference/moe-loss-ref.ts';
import { dispatchRef, gatherRef } from '../test/reference/dispatch-ref.ts';
import { matmulRef } from '../test/reference/matmul-ref.ts';

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
  /** Host copies of the inputs, for the checks. */
  const host = new Map<Tensor, Float32Array>();
  const t = (shape: number[], s = 1) => {
    const h = rand(
      shape.reduce((p, q) => p * q, 1),
      s,
    );
    const x = rt.upload(h, shape);
    owned.push(x);
    host.set(x, h);
    return x;
  };
  const h = (x: Tensor) => host.get(x)!;
  const opts = { sampleMs: ctx.quick ? 60 : 150, samples: ctx.quick ? 3 : 5 };
  const rows: BenchRow[] = [];
  /** Times `record` (outputs disposed) after `check` has compared one run's outputs with float64; `stem` is the kernel's name stem. */
  const bench = async (stem: string, name: string, bytes: number, record: () => Tensor[] | void, check: () => Promise<CheckOutcome>) => {
    const { timing: tm, check: ck } = await timeCase(rt, { key: `kernels ${name}`, record: () => record()?.forEach((o) => o.dispose()), check }, opts);
    const gbs = tm ? bytes / (tm.bestMs * 1e6) : null;
    const gbsMed = tm ? bytes / (tm.medianMs * 1e6) : null;
    rows.push({
      stem,
      kernel: name,
      'MiB moved': round(bytes / 2 ** 20, 1),
      check: ck.text,
      'best ms': tm ? round(tm.bestMs, 3) : null,
      ...timingCells(tm),
      'GB/s (best)': gbs === null ? null : round(gbs, 2),
      'GB/s (median)': gbsMed === null ? null : round(gbsMed, 2),
      '% of host memcpy (best)': gbs === null ? null : round((100 * gbs) / limit, 1),
    });
    ctx.log(`${name}: ${gbs === null ? 'not timed' : `${round(gbs, 2)} GB/s`} (check ${ck.text})`);
  };
  /** Run once, read the outputs, dispose them. */
  const once = async (f: () => Tensor[]) => {
    const outs = f();
    const got = await Promise.all(outs.map((o) => o.readF32()));
    for (const o of outs) o.dispose();
    return got;
  };

  const x = t([N / 256, 256]);
  const y = t([N / 256, 256]);
  // Tolerances: elementwise ops are a few ulp (1e-6 of the largest value); row reductions over
  // 256 (rmsnorm) or 8 (router) values and tree sums over 1M values stay within 1e-5.
  await bench(
    'elementwise',
    `add [${N / 256}, 256]`,
    3 * N * 4,
    () => [add(x, y)],
    async () => {
      const [o] = await once(() => [add(x, y)]);
      return compareOutput(
        o!,
        Float64Array.from(h(x), (v, i) => v + h(y)[i]!),
        1e-6,
      );
    },
  );
  await bench(
    'elementwise',
    `silu [${N}]`,
    2 * N * 4,
    () => [silu(x)],
    async () => {
      const [o] = await once(() => [silu(x)]);
      return compareOutput(o!, Float64Array.from(h(x), siluRef), 1e-6);
    },
  );
  const w = t([256]);
  await bench(
    'rmsnorm',
    `rmsnorm [${N / 256}, 256]`,
    2 * N * 4,
    () => {
      const r = rmsnorm(x, w);
      return [r.y, r.rstd];
    },
    async () => {
      const [yy, rs] = await once(() => {
        const r = rmsnorm(x, w);
        return [r.y, r.rstd];
      });
      const ref = rmsnormRef(h(x), h(w), N / 256, 256);
      return combineOutcomes(compareOutput(yy!, ref.y, 1e-5), compareOutput(rs!, ref.rstd, 1e-5));
    },
  );
  const logits = t([N / 8, 8], 2);
  await bench(
    'router',
    `router top-2 [${N / 8}, 8]`,
    N * 4 + N * 4 + (N / 8) * 2 * 8,
    () => {
      const r = routerTopK(logits, { k: 2 });
      return [r.probs, r.idx, r.weights];
    },
    async () => {
      const r = routerTopK(logits, { k: 2 });
      const [probs, weights] = await Promise.all([r.probs.readF32(), r.weights.readF32()]);
      const idx = Array.from(await rt.read(r.idx));
      for (const o of [r.probs, r.idx, r.weights]) o.dispose();
      const ref = routerRef(h(logits), N / 8, 8, 2, false);
      // Random f32 logits tie with probability ~2^-24 per pair: the picks must be the same.
      return combineOutcomes(compareOutput(probs, ref.probs, 1e-5), compareOutput(idx, ref.idx, 0), compareOutput(weights, ref.weights, 1e-5));
    },
  );
  const p = t([N]);
  const g = t([N], 0.01);
  const m = t([N], 0);
  const v = t([N], 0);
  rt.fill(v, 1e-4);
  await bench(
    'adamw',
    `adamw [${N}]`,
    7 * N * 4,
    () => adamw(p, g, m, v, { lr: 1e-4, step: 1 }),
    async () => {
      // On copies: the timed iterations keep updating p, m, v.
      const [pc, mc, vc] = [rt.upload(h(p), [N]), rt.zeros([N]), rt.empty([N])];
      rt.fill(vc, 1e-4);
      adamw(pc, g, mc, vc, { lr: 1e-4, step: 1 });
      const [pg, mg, vg] = await Promise.all([pc.readF32(), mc.readF32(), vc.readF32()]);
      for (const o of [pc, mc, vc]) o.dispose();
      const ref = { p: Float64Array.from(h(p)), m: new Float64Array(N), v: new Float64Array(N).fill(Math.fround(1e-4)) };
      adamwRef(ref, h(g), 1, 1e-4, 0.01, 0.9, 0.999, 1e-8, 1); // the kernel's defaults (src/kernels/adamw.ts)
      return combineOutcomes(compareOutput(pg, ref.p, 1e-6), compareOutput(mg, ref.m, 1e-6), compareOutput(vg, ref.v, 1e-6));
    },
  );
  const many = Array.from({ length: 40 }, () => t([(N / 40) | 0]));
  const manyBytes = many.reduce((a, q) => a + q.size * 4, 0);
  await bench(
    'reduce',
    'sumSquaresMany (40 tensors, grad norm)',
    manyBytes,
    () => [sumSquaresMany(many)],
    async () => {
      const [o] = await once(() => [sumSquaresMany(many)]);
      return compareOutput(o!, [many.reduce((a, q) => a + sumSquares(h(q)), 0)], 1e-5);
    },
  );
  await bench(
    'guard',
    'finiteStatsMany (40 tensors, guards)',
    manyBytes,
    () => [finiteStatsMany(many)],
    async () => {
      const [o] = await once(() => [finiteStatsMany(many)]);
      return compareOutput(
        o!,
        many.flatMap((q) => statsRef(h(q))),
        1e-5,
      );
    },
  );

  // The other stems, one case each at the sizes above.
  const scratch = t([N]);
  await bench(
    'fill',
    `fill [${N}]`,
    N * 4,
    () => rt.fill(scratch, 1.5),
    async () => {
      rt.fill(scratch, 1.5);
      return compareOutput(await scratch.readF32(), fillRef(N, 1.5, 'f32'), 0); // one bit pattern: exact
    },
  );
  await bench(
    'swiglu',
    `swiglu [${N / 256}, 256]`,
    3 * N * 4,
    () => [swiglu(x, y)],
    async () => {
      const [o] = await once(() => [swiglu(x, y)]);
      return compareOutput(o!, swigluRef(h(x), h(y)), 1e-6);
    },
  );
  const rd = { B: N / (64 * 4 * 32), T: 64, H: 4, hd: 32 };
  await bench(
    'rope',
    `rope [${rd.B}, ${rd.T}, ${rd.H}, ${rd.hd}]`,
    2 * N * 4,
    () => [rope(x, rd)],
    async () => {
      const [o] = await once(() => [rope(x, rd)]);
      // f32 products with a float64-built cos/sin table: a few ulp of the largest value.
      return compareOutput(o!, ropeRef(h(x), rd.B, rd.T, rd.H, rd.hd), 1e-6);
    },
  );
  const pool = { outer: N / (64 * 256), n: 64, inner: 256 };
  const dyPool = t([pool.outer, pool.inner]);
  await bench(
    'mean-pool',
    `mean-pool backward [${pool.outer}, ${pool.n}, ${pool.inner}]`,
    (N + pool.outer * pool.inner) * 4,
    () => [meanPoolBackward(dyPool, pool.outer, pool.n, pool.inner)],
    async () => {
      const [o] = await once(() => [meanPoolBackward(dyPool, pool.outer, pool.n, pool.inner)]);
      return compareOutput(o!, meanPoolBackwardRef(h(dyPool), pool.outer, pool.n, pool.inner), 1e-6);
    },
  );
  const ones = rt.upload(new Float32Array(N).fill(1), [N / 256, 256]);
  owned.push(ones);
  await bench(
    'loss',
    `huber loss [${N / 256}, 256]`,
    3 * N * 4,
    () => {
      const r = huberLoss(x, y, ones);
      return [r.loss, r.count];
    },
    async () => {
      const [l, c] = await once(() => {
        const r = huberLoss(x, y, ones);
        return [r.loss, r.count];
      });
      const ref = huberLossRef(h(x), h(y), new Float64Array(N).fill(1), TIME_MOE_HUBER_DELTA);
      // A tree sum over N values: 1e-5 of the mean.
      return combineOutcomes(compareOutput(l!, [ref.loss], 1e-5), compareOutput(c!, [ref.count], 0));
    },
  );
  await bench(
    'moe-loss',
    `router z-loss [${N / 8}, 8]`,
    N * 4 + (N / 8) * 4,
    () => {
      const r = routerZLoss(logits);
      return [r.loss, r.lse];
    },
    async () => {
      const [l] = await once(() => {
        const r = routerZLoss(logits);
        r.lse.dispose();
        return [r.loss];
      });
      return compareOutput(l!, [zLossRef(h(logits), N / 8, 8)], 1e-5);
    },
  );
  // Dispatch: the gather of token rows into expert order, for a plan routed once (bench/dispatch.bench.ts times the routing).
  const tokens = N / 64;
  const [dLogits, dRows] = [t([tokens, 8], 2), t([tokens, 64])];
  const routed = routeAndDispatch(dLogits, { k: 2 });
  await bench(
    'dispatch',
    `gather rows [${tokens}, 64] x top-2`,
    3 * N * 4,
    () => [gatherRows(dRows, routed.plan)],
    async () => {
      const [o] = await once(() => [gatherRows(dRows, routed.plan)]);
      const plan = dispatchRef(routerRef(h(dLogits), tokens, 8, 2, false).idx, tokens, 8, 2);
      return compareOutput(o!, gatherRef(h(dRows), plan, 64), 0); // a permutation of rows: exact
    },
  );
  for (const r of [routed.probs, routed.idx, routed.weights]) r.dispose();
  disposeDispatch(routed.plan);
  const S = ctx.quick ? 128 : 256;
  const [ma, mb] = [t([S, S]), t([S, S])];
  await bench(
    'matmul',
    `matmul [${S}, ${S}] x [${S}, ${S}] (bench/matmul.bench.ts: GFLOP/s and the variants)`,
    3 * S * S * 4,
    () => [matmul(ma, mb)],
    async () => {
      const [o] = await once(() => [matmul(ma, mb)]);
      return compareOutput(o!, matmulRef(h(ma), h(mb), S, S, S), 1e-5);
    },
  );
  const state = createTrainState(rt, { adamStep: 9, lossScale: 1, goodSteps: 0 });
  owned.push(state);
  const adam = { lr: 3e-4, beta1: 0.9, beta2: 0.999 };
  await bench(
    'train-state',
    'adam scalars (a [4] state, one dispatch)',
    6 * 4,
    () => [adamScalars(state, adam)],
    async () => {
      const [o] = await once(() => [adamScalars(state, adam)]);
      // f32 exp/log of t·ln(beta): a few ulp (test/kernels/train-state.test.ts).
      return compareOutput(o!, [adam.lr / (1 - adam.beta1 ** 10), Math.sqrt(1 - adam.beta2 ** 10)], 2e-6);
    },
  );

  // Attention at TimeMoE-50M's head shape: B=4, T=256 (quick: T=128), H=12, hd=32.
  const d = { B: 4, T: ctx.quick ? 128 : 256, H: 12, hd: 32 };
  const shape = [d.B, d.T, d.H * d.hd];
  const [q, k, vv, dO] = [t(shape), t(shape), t(shape), t(shape)];
  const pairs = (d.B * d.H * d.T * (d.T + 1)) / 2;
  const attnRows: BenchRow[] = [];
  const ref = attentionRef(h(q), h(k), h(vv), d);
  // As test/kernels/attention.test.ts: the online softmax in f32 over T keys, 1e-4 of the largest value.
  const fwd = await timeCase(
    rt,
    {
      key: `attention forward ${JSON.stringify(d)}`,
      record: () => {
        const r = attention(q, k, vv, d);
        r.o.dispose();
        r.lse.dispose();
      },
      check: async () => {
        const [o, lse] = await once(() => {
          const r = attention(q, k, vv, d);
          return [r.o, r.lse];
        });
        return combineOutcomes(compareOutput(o!, ref.o, 1e-4), compareOutput(lse!, ref.lse, 1e-4));
      },
    },
    { ...opts, maxIters: 20 },
  );
  const both = await timeCase(
    rt,
    {
      key: `attention backward ${JSON.stringify(d)}`,
      record: () => {
        const r = attention(q, k, vv, d);
        const gr = attentionBackward(dO, q, k, vv, r.o, r.lse, d);
        for (const o of [r.o, r.lse, gr.dq, gr.dk, gr.dv]) o.dispose();
      },
      check: async () => {
        const r = attention(q, k, vv, d);
        const [dq, dk, dv] = await once(() => {
          const gr = attentionBackward(dO, q, k, vv, r.o, r.lse, d);
          return [gr.dq, gr.dk, gr.dv];
        });
        r.o.dispose();
        r.lse.dispose();
        const gref = attentionBackwardRef(h(dO), h(q), h(k), h(vv), d);
        return combineOutcomes(compareOutput(dq!, gref.dq, 1e-4), compareOutput(dk!, gref.dk, 1e-4), compareOutput(dv!, gref.dv, 1e-4));
      },
    },
    { ...opts, maxIters: 10 },
  );
  // Forward: 2 dots of hd per (query, key) pair = 4·hd flops; backward recomputes P and does 4 more dots: 8·hd.
  const attnRow = (pass: string, r: typeof fwd, flopsPerPair: number): BenchRow => ({
    stem: 'attention',
    pass,
    shape: `B${d.B} T${d.T} H${d.H} hd${d.hd}`,
    check: r.check.text,
    'best ms': r.timing ? round(r.timing.bestMs, 2) : null,
    ...timingCells(r.timing, 2),
    'GFLOP/s (best)': r.timing ? round((pairs * flopsPerPair * d.hd) / (r.timing.bestMs * 1e6), 2) : null,
    'GFLOP/s (median)': r.timing ? round((pairs * flopsPerPair * d.hd) / (r.timing.medianMs * 1e6), 2) : null,
  });
  attnRows.push(attnRow('forward', fwd, 4), attnRow('forward + backward', both, 12));
  for (const o of owned) o.dispose();
  return [
    {
      title: 'memory-bound kernels',
      rows,
      notes: [
        `Machine limit: host memcpy ${round(limit, 1)} GB/s (read + write), measured in this run.`,
        'Bytes = what the kernel must read and write once. Best, median and min–max of the samples (the CPU is shared: read the median against its spread).',
        "check: each kernel's outputs against a float64 reference once before timing (test/reference/); a wrong one is not timed.",
      ],
    },
    {
      title: 'causal attention (fused, online softmax)',
      rows: attnRows,
      notes: ['Causal pairs only; forward 4·hd flops per pair, forward + backward 12·hd. Outputs (o, lse; dq, dk, dv) checked against float64 first.'],
    },
  ];
}
