/**
 * Every differentiable autograd op: its GPU forward (f32) against the op's float64 reference,
 * then its GPU backward against central finite differences of that reference
 * (test/reference/gradcheck.ts).
 *
 * Tolerances, relative to the largest entry, from the measured error: 42 runs of this file and
 * mlp-ops.test.ts with fresh seeds (TEST_MEASURE=<file>, test/reference/compare.ts) gave a worst
 * forward error of 4.4e-7 (MoE FFN) and a worst gradient error of 1.3e-6 (pooled aux loss;
 * 9.0e-7 for every other op). The bounds are ~10x those: FWD_RTOL 5e-6 and RTOL 1.5e-5. A wrong
 * formula is off by O(1) of the largest entry (a loss summed over two layers instead of
 * averaged is off by 1.0); the finite difference itself is float64 with eps 1e-6 (~1e-10).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Var } from '../../src/autograd/variable.ts';
import { linear } from '../../src/autograd/ops/linear.ts';
import { add, mulColumn, scale, sigmoid, swiglu, swigluFused } from '../../src/autograd/ops/activation.ts';
import { loraDense, loraGrouped } from '../../src/model/lora.ts';
import { rmsnorm } from '../../src/autograd/ops/rmsnorm.ts';
import { causalAttention, rope } from '../../src/autograd/ops/attention.ts';
import { combine, gatherRows, groupedLinear, routeAndDispatch } from '../../src/autograd/ops/moe.ts';
import { crossEntropyLoss, huberLoss, meanPoolSeq, pooledAuxLoss, switchAuxLoss, weightedSum, zLoss } from '../../src/autograd/ops/loss.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, toF32, seeded } from '../reference/rng.ts';
import { gradcheck, rand, type GradcheckInput } from '../reference/gradcheck.ts';
import { matmulRef } from '../reference/matmul-ref.ts';
import { softmaxRows } from '../reference/ops.ts';
import { silu, sigmoid as sigmoidRef } from '../reference/elementwise-ref.ts';
import { attentionRef } from '../reference/attention-ref.ts';
import { rmsnormRef } from '../reference/rmsnorm-ref.ts';
import { ropeRef } from '../reference/rope-ref.ts';
import { crossEntropyRef, huberLossRef } from '../reference/loss-ref.ts';
import { pooledLossRef, switchLossRef, zLossRef } from '../reference/moe-loss-ref.ts';
import { topkIndices } from '../reference/router-ref.ts';

const RTOL = 1.5e-5;
const FWD_RTOL = 5e-6;
let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

function check(
  name: string,
  inputs: (rng: Rng) => GradcheckInput[],
  gpu: (v: Var[]) => Var,
  reference: (x: Float64Array[]) => Float64Array,
  o: { atol?: number } = {},
) {
  it(name, async () => {
    const { seed, rng } = seeded();
    await gradcheck({ rt, name, seed, inputs: inputs(rng), gpu, reference, forwardRtol: FWD_RTOL, rtol: RTOL, ...o });
  });
}

// LoRA (below) measured over three seeds: forward <= 8.3e-8 and gradients <= 9.1e-8 of the
// largest entry, inside FWD_RTOL / RTOL; a scale off by 0.1% is off by 4e-4 and fails.

describe('autograd ops: numeric gradient checks', () => {
  // linear: x [5,3] · W[4,3]ᵀ + b[4]
  check(
    'linear with bias',
    (r) => [rand(r, [5, 3]), rand(r, [4, 3]), rand(r, [4])],
    ([x, w, b]) => linear(x!, w!, b!),
    ([x, w, b]) => {
      const y = matmulRef(x!, w!, 5, 4, 3, false, true);
      for (let i = 0; i < 5; i++) for (let j = 0; j < 4; j++) y[i * 4 + j]! += b![j]!;
      return y;
    },
  );
  check(
    'linear without bias (K=1, the point embedding)',
    (r) => [rand(r, [7, 1]), rand(r, [6, 1])],
    ([x, w]) => linear(x!, w!, null),
    ([x, w]) => matmulRef(x!, w!, 7, 6, 1, false, true),
  );

  check(
    'add (same shape)',
    (r) => [rand(r, [3, 5]), rand(r, [3, 5])],
    ([a, b]) => add(a!, b!),
    ([a, b]) => a!.map((v, i) => v + b![i]!),
  );
  check(
    'add (broadcast row vector)',
    (r) => [rand(r, [3, 5]), rand(r, [5])],
    ([a, b]) => add(a!, b!),
    ([a, b]) => a!.map((v, i) => v + b![i % 5]!),
  );
  check(
    'add of a value to itself',
    (r) => [rand(r, [4, 3])],
    ([a]) => add(a!, a!),
    ([a]) => a!.map((v) => 2 * v),
  );
  check(
    'scale by a constant',
    (r) => [rand(r, [3, 4])],
    ([x]) => scale(x!, -1.75),
    ([x]) => x!.map((v) => -1.75 * v),
  );
  check(
    'mulColumn',
    (r) => [rand(r, [4, 3]), rand(r, [4, 1])],
    ([x, s]) => mulColumn(x!, s!),
    ([x, s]) => x!.map((v, i) => v * s![Math.floor(i / 3)]!),
  );
  check(
    'sigmoid',
    (r) => [rand(r, [3, 7], 4)],
    ([x]) => sigmoid(x!),
    ([x]) => x!.map(sigmoidRef),
  );
  check(
    'swiglu',
    (r) => [rand(r, [3, 5], 3), rand(r, [3, 5], 3)],
    ([g, u]) => swiglu(g!, u!),
    ([g, u]) => g!.map((v, i) => silu(v) * u![i]!),
  );
  check(
    'swigluFused (gate | up halves of one [R, 2H] tensor)',
    (r) => [rand(r, [3, 10], 3)],
    ([gu]) => swigluFused(gu!),
    ([gu]) => {
      const y = new Float64Array(15);
      for (let r = 0; r < 3; r++) for (let j = 0; j < 5; j++) y[r * 5 + j] = silu(gu![r * 10 + j]!) * gu![r * 10 + 5 + j]!;
      return y;
    },
  );
  check(
    'rmsnorm',
    (r) => [rand(r, [4, 6]), rand(r, [6])],
    ([x, w]) => rmsnorm(x!, w!, 1e-6),
    ([x, w]) => rmsnormRef(x!, w!, 4, 6, 1e-6).y,
  );

  const shp = { batch: 2, seqLen: 3, heads: 2, headDim: 4 };
  check(
    'rope',
    (r) => [rand(r, [6, 8])],
    ([x]) => rope(x!, shp, 10000),
    ([x]) => ropeRef(x!, 2, 3, 2, 4, 10000),
  );
  check(
    'causal attention',
    (r) => [rand(r, [6, 8]), rand(r, [6, 8]), rand(r, [6, 8])],
    ([q, k, v]) => causalAttention(q!, k!, v!, shp),
    ([q, k, v]) => attentionRef(q!, k!, v!, { B: 2, T: 3, H: 2, hd: 4 }).o,
  );

  // The MoE FFN path: router -> top-2 -> gather -> grouped SwiGLU experts -> weighted combine.
  for (const renorm of [false, true]) {
    const N = 5,
      d = 3,
      E = 3,
      k = 2,
      H = 4;
    check(
      `MoE FFN (router, dispatch, grouped experts, combine; renormalise=${renorm})`,
      (r) => [rand(r, [N, d]), rand(r, [E, d], 2), rand(r, [E, H, d]), rand(r, [E, H, d]), rand(r, [E, d, H])],
      ([x, wr, wg, wu, wd]) => {
        const logits = linear(x!, wr!, null);
        const { weights, plan } = routeAndDispatch(logits, k, renorm, E, null);
        const xs = gatherRows(x!, plan);
        const h = swiglu(groupedLinear(xs, wg!, plan), groupedLinear(xs, wu!, plan));
        return combine(groupedLinear(h, wd!, plan), weights, plan);
      },
      ([x, wr, wg, wu, wd]) => {
        const logits = matmulRef(x!, wr!, N, E, d, false, true);
        const probs = softmaxRows(logits, N, E);
        const idx = topkIndices(logits, N, E, k);
        const y = new Float64Array(N * d);
        for (let t = 0; t < N; t++) {
          let s = 0;
          for (let j = 0; j < k; j++) s += probs[t * E + idx[t * k + j]!]!;
          for (let j = 0; j < k; j++) {
            const e = idx[t * k + j]!;
            const w = probs[t * E + e]! / (renorm ? s : 1);
            const xt = x!.subarray(t * d, t * d + d);
            const g = matmulRef(xt, wg!.subarray(e * H * d, (e + 1) * H * d), 1, H, d, false, true);
            const u = matmulRef(xt, wu!.subarray(e * H * d, (e + 1) * H * d), 1, H, d, false, true);
            const hv = g.map((gv, i) => silu(gv) * u[i]!);
            const o = matmulRef(hv, wd!.subarray(e * d * H, (e + 1) * d * H), 1, d, H, false, true);
            for (let c = 0; c < d; c++) y[t * d + c]! += w * o[c]!;
          }
        }
        return y;
      },
    );
  }

  // LoRA (src/model/lora.ts): y = x Wᵀ + b + s (x Aᵀ) Bᵀ. B is random here (not its zero init) so
  // that dA is not zero; x, W, b, A and B are all checked.
  {
    const N = 5,
      d = 4,
      out = 3,
      rank = 2,
      s = 1.5;
    check(
      'LoRA dense projection (x, W, b, A, B)',
      (r) => [rand(r, [N, d]), rand(r, [out, d]), rand(r, [out]), rand(r, [rank, d]), rand(r, [out, rank])],
      ([x, w, b, a, bm]) => loraDense(linear(x!, w!, b!), x!, a!, bm!, s),
      ([x, w, b, a, bm]) => {
        const delta = matmulRef(bm!, a!, out, d, rank);
        const weff = w!.map((v, i) => v + s * delta[i]!);
        const y = matmulRef(x!, weff, N, out, d, false, true);
        for (let i = 0; i < N; i++) for (let j = 0; j < out; j++) y[i * out + j]! += b![j]!;
        return y;
      },
    );
  }
  {
    // The routed experts with one adapter each on the fused gate|up rows and on down_proj.
    const N = 5,
      d = 3,
      E = 3,
      k = 2,
      H = 2,
      rank = 2,
      s = 0.75;
    const expertW = (w: Float64Array, a: Float64Array, b: Float64Array, e: number, rows: number, cols: number) => {
      const delta = matmulRef(b.subarray(e * rows * rank, (e + 1) * rows * rank), a.subarray(e * rank * cols, (e + 1) * rank * cols), rows, cols, rank);
      return w.subarray(e * rows * cols, (e + 1) * rows * cols).map((v, i) => v + s * delta[i]!);
    };
    check(
      'LoRA on grouped experts (gate|up and down adapters per expert)',
      (r) => [
        rand(r, [N, d]),
        rand(r, [E, d], 2),
        rand(r, [E, 2 * H, d]),
        rand(r, [E, d, H]),
        rand(r, [E, rank, d]),
        rand(r, [E, 2 * H, rank]),
        rand(r, [E, rank, H]),
        rand(r, [E, d, rank]),
      ],
      ([x, wr, wgu, wd, agu, bgu, ad, bd]) => {
        const { weights, plan } = routeAndDispatch(linear(x!, wr!, null), k, false, E, null);
        const xs = gatherRows(x!, plan);
        const h = swigluFused(loraGrouped(groupedLinear(xs, wgu!, plan), xs, agu!, bgu!, s, plan));
        return combine(loraGrouped(groupedLinear(h, wd!, plan), h, ad!, bd!, s, plan), weights, plan);
      },
      ([x, wr, wgu, wd, agu, bgu, ad, bd]) => {
        const logits = matmulRef(x!, wr!, N, E, d, false, true);
        const probs = softmaxRows(logits, N, E);
        const idx = topkIndices(logits, N, E, k);
        const y = new Float64Array(N * d);
        for (let t = 0; t < N; t++)
          for (let j = 0; j < k; j++) {
            const e = idx[t * k + j]!;
            const xt = x!.subarray(t * d, t * d + d);
            const gu = matmulRef(xt, expertW(wgu!, agu!, bgu!, e, 2 * H, d), 1, 2 * H, d, false, true);
            const hv = Float64Array.from({ length: H }, (_, i) => silu(gu[i]!) * gu[H + i]!);
            const o = matmulRef(hv, expertW(wd!, ad!, bd!, e, d, H), 1, d, H, false, true);
            for (let c = 0; c < d; c++) y[t * d + c]! += probs[t * E + e]! * o[c]!;
          }
        return y;
      },
    );
  }

  // Losses and loss assembly.
  {
    const N = 4,
      h = 3;
    const mask = Float64Array.from({ length: N * h }, (_, i) => (i % 5 === 4 ? 0 : 1));
    it('huber loss (both branches, masked)', async () => {
      const { seed, rng } = seeded();
      const target = toF32(rng.uniformArray(N * h, -4, 4));
      const tT = rt.upload(Float32Array.from(target), [N, h]);
      const mT = rt.upload(Float32Array.from(mask), [N, h]);
      await gradcheck({
        rt,
        name: 'huber',
        seed,
        inputs: [{ shape: [N, h], data: toF32(rng.uniformArray(N * h, -4, 4)) }],
        gpu: ([p]) => huberLoss(p!, tT, mT, 2),
        reference: ([p]) => Float64Array.of(huberLossRef(p!, target, mask, 2).loss),
        forwardRtol: FWD_RTOL,
        rtol: RTOL,
      });
      tT.dispose();
      mT.dispose();
    });
  }
  it('cross-entropy (with an ignored row)', async () => {
    const { seed, rng } = seeded();
    const N = 5,
      C = 7;
    const labels = Int32Array.from({ length: N }, (_, i) => (i === 2 ? -1 : rng.int(C)));
    const lT = rt.upload(labels, [N], 'i32');
    await gradcheck({
      rt,
      name: 'cross-entropy',
      seed,
      inputs: [{ shape: [N, C], data: toF32(rng.uniformArray(N * C, -3, 3)) }],
      gpu: ([l]) => crossEntropyLoss(l!, lT),
      reference: ([l]) => Float64Array.of(crossEntropyRef(l!, labels, N, C).loss),
      forwardRtol: FWD_RTOL,
      rtol: RTOL,
    });
    lT.dispose();
  });
  check(
    'weightedSum',
    (r) => [rand(r, [1]), rand(r, [1]), rand(r, [1])],
    ([a, b, c]) => weightedSum([a!, b!, c!], [1, 0.02, 1e-3]),
    ([a, b, c]) => Float64Array.of(a![0]! + 0.02 * b![0]! + 1e-3 * c![0]!),
  );
  check(
    'meanPoolSeq',
    (r) => [rand(r, [2 * 3, 4])],
    ([h]) => meanPoolSeq(h!, { batch: 2, seqLen: 3 }),
    ([h]) => {
      const y = new Float64Array(8);
      for (let b = 0; b < 2; b++) for (let t = 0; t < 3; t++) for (let c = 0; c < 4; c++) y[b * 4 + c]! += h![(b * 3 + t) * 4 + c]! / 3;
      return y;
    },
  );
  check(
    'router z-loss',
    (r) => [rand(r, [5, 4], 3)],
    ([l]) => zLoss(l!),
    ([l]) => Float64Array.of(zLossRef(l!, 5, 4)),
  );

  // Balancing losses: gradient flows through the router probabilities only (f is a count).
  const N = 6,
    E = 4,
    k = 2;
  const routed = (ls: Var[]) =>
    ls.map((l) => {
      const { probs, idx } = routeAndDispatch(l, k, false, E, null);
      return { probs, idx: idx.data };
    });
  const perLayerRef = (ls: Float64Array[]) => ls.map((l) => ({ probs: softmaxRows(l, N, E), idx: topkIndices(l, N, E, k), N }));
  const switchRef = (ls: Float64Array[], over: 'mean' | 'sum') => {
    const s = perLayerRef(ls).reduce((a, L) => a + switchLossRef(L.probs, L.idx, N, E, k), 0);
    return Float64Array.of(over === 'mean' ? s / ls.length : s);
  };
  // When a layer's picks are balanced, its loss's gradient is exactly 0 and f32 returns
  // cancellation noise: worst seen 4.4e-9 absolute (2 of 12 runs failed the default atol 1e-6
  // floor on it). atol 5e-3 puts the bound there at RTOL * 5e-3 = 7.5e-8 (17x the noise), while
  // a layer's nonzero gradient is ~1e-2, so the bound elsewhere grows by at most ~1.5x.
  const AUX_ATOL = 5e-3;
  check(
    'pooled aux loss over two layers (through the router softmax)',
    (r) => [rand(r, [N, E], 2), rand(r, [N, E], 2)],
    (ls) => pooledAuxLoss(routed(ls)),
    (ls) => Float64Array.of(pooledLossRef(perLayerRef(ls), E, k)),
    { atol: AUX_ATOL },
  );
  check(
    'switch aux loss over two layers (mean of the per-layer losses)',
    (r) => [rand(r, [N, E], 2), rand(r, [N, E], 2)],
    (ls) => switchAuxLoss(routed(ls)),
    (ls) => switchRef(ls, 'mean'),
    { atol: AUX_ATOL },
  );

  // Issue 18 item 1: a Switch aux loss summed over layers instead of averaged has the right
  // backward and was missed. The forward check must reject it: here the real op is held to the
  // summing reference, which is what the mutated op would have matched.
  it('the forward check rejects a switch aux loss summed over layers instead of averaged', async () => {
    const { seed, rng } = seeded();
    const run = gradcheck({
      rt,
      name: 'switch aux, summing reference',
      seed,
      inputs: [rand(rng, [N, E], 2), rand(rng, [N, E], 2)],
      gpu: (ls) => switchAuxLoss(routed(ls)),
      reference: (ls) => switchRef(ls, 'sum'),
      forwardRtol: FWD_RTOL,
      rtol: RTOL,
      atol: AUX_ATOL,
    });
    await expect(run).rejects.toThrow(/switch aux, summing reference: forward mismatch/);
  });
});
