/** Matmul family in f32: every layout, shape, batching and epilogue; backward; grouped (MoE) forms. */
import { describe, it, expect, beforeAll } from 'vitest';
import { matmul, matmulBackward, groupedMatmul, groupedMatmulWeightGrad, groupedMatmulBackwardX } from '../../src/kernels/matmul.ts';
import { VARIANTS, forceMatmul, type MatmulConfig, type MatmulConfigOverride, type TiledConfig } from '../../src/kernels/matmul-config.ts';
import { Rng, freshSeed } from '../reference/rng.ts';
import { matmulRef as refMatmul } from '../reference/matmul-ref.ts';
import { expectClose } from '../reference/compare.ts';
import {
  initRuntime,
  rt,
  tol,
  rand,
  up,
  checkCase,
  SHAPES,
  LAYOUTS,
  EPILOGUES,
  groupedRef,
  groupedBackwardRef,
  lossOf,
  counts,
  offsetsOf,
} from './matmul-cases.ts';

beforeAll(initRuntime);

describe('matmul: every layout x shape x batching x epilogue against float64', () => {
  for (const [transA, transB] of LAYOUTS) {
    const name = `${transA ? 'Aᵀ' : 'A'}·${transB ? 'Bᵀ' : 'B'}`;
    it(`${name}: 2-D, batched, broadcast B / A, rotating epilogues`, async () => {
      for (let s = 0; s < SHAPES.length; s++) {
        const [M, N, K] = SHAPES[s]!;
        const base = { M, N, K, transA, transB };
        await checkCase({ ...base, batch: 0, ...EPILOGUES[s % 4] });
        await checkCase({ ...base, batch: 3, ...EPILOGUES[(s + 1) % 4] });
        await checkCase({ ...base, batch: 2, bBroadcast: true, ...EPILOGUES[(s + 2) % 4] });
        await checkCase({ ...base, batch: 2, aBroadcast: true, ...EPILOGUES[(s + 3) % 4] });
      }
    });
  }

  it('every epilogue on every layout at one awkward shape', async () => {
    for (const [transA, transB] of LAYOUTS) for (const e of EPILOGUES) await checkCase({ M: 17, N: 9, K: 67, transA, transB, batch: 0, ...e });
  });

  it('every tile variant of the generator (lane m/n, shared block, vec4 on/off, K unroll)', async () => {
    // Structurally different generator paths (each compiles 4 pipelines, so keep the list short).
    const configs: Partial<MatmulConfig>[] = [
      VARIANTS['v1 naive 1x1, wg 8x8']!,
      VARIANTS['v5 2x8, shared B block + vec4']!,
      { lane: 'n', wgL: 32, wgU: 1, tl: 2, tu: 3, ku: 3, vec4: true },
      { lane: 'n', wgL: 4, wgU: 4, tl: 3, tu: 2, ku: 8, vec4: true },
    ];
    for (const config of configs) for (const [transA, transB] of LAYOUTS) await checkCase({ M: 37, N: 21, K: 68, transA, transB, batch: 0, config });
  });

  it("the GPU family's tiled kernel: odd tiles, partial K tiles, prefetch on and off, every layout and epilogue", async () => {
    // Tiles that do not divide M, N or K (37 x 21 x 68 against 12x20 tiles with BK 8 or 16 x 16
    // with BK 8), so every edge (zero-filled loads, skipped stores) is exercised. The prefetching
    // tile carries 16 registers per invocation, like the tuned ones (<= 12): SwiftShader's shader
    // compiler grows superlinearly in them (24: 8 s; 39: over 3 GB and minutes; docs/IMPLEMENTATIONS.md).
    const configs: TiledConfig[] = [
      { kind: 'tiled', tx: 4, ty: 4, rm: 3, rn: 5, bk: 8, prefetch: true },
      { kind: 'tiled', tx: 8, ty: 4, rm: 4, rn: 2, bk: 8, prefetch: false },
    ];
    for (const config of configs) {
      for (const [transA, transB] of LAYOUTS) await checkCase({ M: 37, N: 21, K: 68, transA, transB, batch: 0, config });
      await checkCase({ M: 45, N: 19, K: 7, transA: false, transB: true, batch: 3, bias: true, activation: 'silu', residual: true, alpha: 0.5, config });
      await checkCase({ M: 17, N: 9, K: 67, transA: true, transB: false, batch: 0, accumulate: true, config });
    }
  });

  it('vec4 path with K % 4 == 0 and a batched, bias-fused linear layer', async () => {
    for (const [transA, transB] of LAYOUTS) await checkCase({ M: 45, N: 19, K: 96, transA, transB, batch: 2, bias: true, activation: 'relu' });
  });

  it('vec4-along-rows path (M, N multiples of 4, partial row blocks, clamped groups)', async () => {
    for (const [transA, transB] of LAYOUTS) {
      await checkCase({ M: 44, N: 20, K: 13, transA, transB, batch: 2, bias: true, activation: 'relu' });
      await checkCase({ M: 12, N: 8, K: 68, transA, transB, batch: 0, residual: true });
    }
  });

  it('accumulate adds into an existing output (with and without epilogue)', async () => {
    for (const [transA, transB] of LAYOUTS) {
      await checkCase({ M: 33, N: 65, K: 130, transA, transB, batch: 0, accumulate: true });
      await checkCase({ M: 9, N: 5, K: 12, transA, transB, batch: 2, accumulate: true, bias: true, activation: 'silu', alpha: 2 });
    }
  });

  it('K = 0 gives act(bias), and empty outputs dispatch nothing', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const bias = rand(rng, 6);
    const y = matmul(rt.zeros([4, 0]), rt.zeros([0, 6]), { bias: up(bias, [6]), activation: 'relu' });
    const exp = new Float64Array(24).map((_, i) => Math.max(bias[i % 6]!, 0));
    expectClose(await y.readF32(), exp, { rtol: 0, seed, what: 'K=0' });
    expect(matmul(rt.zeros([0, 3]), rt.zeros([3, 5])).shape).toEqual([0, 5]);
  });

  it('rejects mismatched shapes', () => {
    expect(() => matmul(rt.zeros([3, 4]), rt.zeros([5, 6]))).toThrow(/inner dimensions/);
    expect(() => matmul(rt.zeros([3, 4]), rt.zeros([4, 6]), { bias: rt.zeros([5]) })).toThrow(/bias/);
    expect(() => matmul(rt.zeros([3, 4]), rt.zeros([4, 6]), { accumulate: true })).toThrow(/accumulate/);
  });

  it('refuses f16 operands and outputs on a device without shader-f16, naming the feature', () => {
    // f16 storage is plain bytes, so the upload works anywhere; the kernel is what needs the feature.
    const a16 = rt.upload(new Float32Array(12), [3, 4], 'f16');
    const b = rt.zeros([4, 6]);
    const had = rt.caps.f16;
    try {
      rt.caps.f16 = false;
      expect(() => matmul(a16, b)).toThrow(/f16 but this device has no shader-f16/);
      expect(() => matmul(b, b, { transB: true, outDtype: 'f16' })).toThrow(/f16 but this device has no shader-f16/);
    } finally {
      rt.caps.f16 = had;
    }
    a16.dispose();
    b.dispose();
  });
});

describe('matmulBackward', () => {
  const cases: { M: number; N: number; K: number; batch: number; aB: number; bB: number }[] = [
    { M: 7, N: 13, K: 5, batch: 1, aB: 1, bB: 1 },
    { M: 33, N: 20, K: 66, batch: 1, aB: 1, bB: 1 },
    { M: 6, N: 5, K: 9, batch: 3, aB: 3, bB: 3 },
    { M: 6, N: 5, K: 9, batch: 3, aB: 3, bB: 1 },
    { M: 6, N: 5, K: 9, batch: 2, aB: 1, bB: 2 },
  ];
  for (const [transA, transB] of LAYOUTS) {
    it(`${transA ? 'Aᵀ' : 'A'}·${transB ? 'Bᵀ' : 'B'}: analytic gradients vs float64 (incl. broadcast operands)`, async () => {
      for (const c of cases) {
        const seed = freshSeed();
        const rng = new Rng(seed);
        const { M, N, K, batch, aB, bB } = c;
        const aData = rand(rng, aB * M * K);
        const bData = rand(rng, bB * K * N);
        const g = rand(rng, batch * M * N);
        const batched = aB > 1 || bB > 1;
        const aShape = transA ? [K, M] : [M, K];
        const bShape = transB ? [N, K] : [K, N];
        const a = up(aData, aB > 1 ? [aB, ...aShape] : aShape);
        const b = up(bData, bB > 1 ? [bB, ...bShape] : bShape);
        const dy = up(g, batched ? [batch, M, N] : [M, N]);
        const { da, db } = matmulBackward(dy, a, b, { transA, transB });
        // Reference: dL/dA[i] = Σ G ⊙ d(C)/dA[i], exactly linear, so a unit perturbation gives it.
        const refGrad = (which: 'a' | 'b'): Float64Array => {
          const x = which === 'a' ? aData : bData;
          const out = new Float64Array(x.length);
          for (let i = 0; i < x.length; i++) {
            const e = new Float64Array(x.length);
            e[i] = 1;
            out[i] = which === 'a' ? lossOf(e, bData, g, M, N, K, transA, transB, batch, aB, bB) : lossOf(aData, e, g, M, N, K, transA, transB, batch, aB, bB);
          }
          return out;
        };
        const what = `${JSON.stringify(c)} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
        expect(da!.shape).toEqual(a.shape);
        expect(db!.shape).toEqual(b.shape);
        expectClose(await da!.readF32(), refGrad('a'), { rtol: tol(N * batch), atol: 1e-6, relativeToMax: true, seed, what: `dA ${what}` });
        expectClose(await db!.readF32(), refGrad('b'), { rtol: tol(M * batch), atol: 1e-6, relativeToMax: true, seed, what: `dB ${what}` });
        // Accumulating a second time doubles the gradient in place.
        matmulBackward(dy, a, b, { transA, transB, outA: da, outB: db, accumulate: true });
        expectClose(
          await da!.readF32(),
          refGrad('a').map((v) => 2 * v),
          { rtol: tol(N * batch), atol: 1e-6, relativeToMax: true, seed, what: `dA accumulated ${what}` },
        );
        for (const t of [a, b, dy, da, db]) t?.dispose();
      }
    });
  }

  it('finite differences of the float64 loss agree with the GPU gradients (tiny, all layouts)', async () => {
    for (const [transA, transB] of LAYOUTS) {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const M = 3,
        N = 4,
        K = 5;
      const aData = rand(rng, M * K);
      const bData = rand(rng, K * N);
      const g = rand(rng, M * N);
      const a = up(aData, transA ? [K, M] : [M, K]);
      const b = up(bData, transB ? [N, K] : [K, N]);
      const { da, db } = matmulBackward(up(g, [M, N]), a, b, { transA, transB });
      const h = 1e-3;
      const fd = (x: Float64Array, isA: boolean) =>
        Float64Array.from(x, (_, i) => {
          const p = Float64Array.from(x);
          const m = Float64Array.from(x);
          p[i]! += h;
          m[i]! -= h;
          const L = (v: Float64Array) => (isA ? lossOf(v, bData, g, M, N, K, transA, transB, 1, 1, 1) : lossOf(aData, v, g, M, N, K, transA, transB, 1, 1, 1));
          return (L(p) - L(m)) / (2 * h);
        });
      // Central differences of a bilinear loss are exact up to float64 rounding (~1e-13/h).
      expectClose(await da!.readF32(), fd(aData, true), { rtol: 1e-5, atol: 1e-6, relativeToMax: true, seed, what: `FD dA ${transA}${transB}` });
      expectClose(await db!.readF32(), fd(bData, false), { rtol: 1e-5, atol: 1e-6, relativeToMax: true, seed, what: `FD dB ${transA}${transB}` });
    }
  });
});

/** A grouped problem's random expert row counts (`mode`), offsets, x [R, K] and w [E, N, K]. */
function groupedInputs(s: { R: number; K: number; N: number; E: number }, mode: 'random' | 'zero' | 'all') {
  const seed = freshSeed();
  const rng = new Rng(seed);
  const cnt = counts(rng, s.E, s.R, mode);
  return { seed, rng, cnt, off: offsetsOf(cnt), x: rand(rng, s.R * s.K), w: rand(rng, s.E * s.N * s.K) };
}

describe('grouped (MoE expert) matmul', () => {
  const shapes: { R: number; K: number; N: number; E: number }[] = [
    { R: 1, K: 3, N: 2, E: 2 },
    { R: 37, K: 13, N: 21, E: 5 },
    { R: 130, K: 64, N: 33, E: 8 },
    { R: 50, K: 12, N: 36, E: 3 },
  ];
  for (const transB of [true, false]) {
    it(`forward (w ${transB ? '[E,N,K]' : '[E,K,N]'}): random counts, an empty expert, all rows on one expert`, async () => {
      for (const s of shapes)
        for (const mode of ['random', 'zero', 'all'] as const) {
          const { seed, rng, cnt, off, x, w } = groupedInputs(s, mode);
          const { R, K, N, E } = s;
          const residual = rand(rng, R * N);
          const exp = groupedRef(x, w, off, E, N, K, transB).map((y, i) => 0.5 * y + residual[i]!);
          const offT = rt.upload(off, [E + 1], 'u32');
          const out = groupedMatmul(up(x, [R, K]), up(w, transB ? [E, N, K] : [E, K, N]), offT, { transB, alpha: 0.5, residual: up(residual, [R, N]) });
          expectClose(await out.readF32(), exp, {
            rtol: tol(K),
            atol: 1e-6,
            relativeToMax: true,
            seed,
            what: `grouped ${JSON.stringify(s)} ${mode} counts=${cnt} transB=${transB}`,
          });
        }
    });
  }

  it('every tile variant gives the same grouped result', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const R = 77,
      K = 20,
      N = 11,
      E = 4;
    const off = offsetsOf(counts(rng, E, R, 'zero'));
    const x = rand(rng, R * K);
    const w = rand(rng, E * N * K);
    const exp = groupedRef(x, w, off, E, N, K, true);
    const xt = up(x, [R, K]),
      wt = up(w, [E, N, K]),
      ot = rt.upload(off, [E + 1], 'u32');
    const configs: MatmulConfigOverride[] = [
      VARIANTS['v1 naive 1x1, wg 8x8']!,
      VARIANTS['v5 2x8, shared B block + vec4']!,
      { wgL: 4, wgU: 2, tl: 3, tu: 5, ku: 2 },
      { kind: 'tiled', tx: 4, ty: 4, rm: 3, rn: 2, bk: 8, prefetch: true },
    ];
    for (const config of configs) {
      const out = rt.withPolicy(forceMatmul(config), () => groupedMatmul(xt, wt, ot));
      expectClose(await out.readF32(), exp, { rtol: tol(K), atol: 1e-6, relativeToMax: true, seed, what: `grouped config ${JSON.stringify(config)}` });
      out.dispose();
    }
  });

  it('weight gradient dW[e] = dY[e]ᵀ·X[e] and dX = dY·W[e] in one dispatch each (empty expert -> zeros)', async () => {
    for (const s of shapes)
      for (const mode of ['zero', 'random', 'all'] as const) {
        const { seed, rng, cnt, off, x, w } = groupedInputs(s, mode);
        const { R, K, N, E } = s;
        const dy = rand(rng, R * N);
        const offT = rt.upload(off, [E + 1], 'u32');
        const dyT = up(dy, [R, N]);
        const xT = up(x, [R, K]);
        const { expW, expX } = groupedBackwardRef(dy, x, w, off, E, N, K, R);
        const what = `${JSON.stringify(s)} ${mode} counts=${cnt}`;
        const dW = groupedMatmulWeightGrad(dyT, xT, offT);
        expect(dW.shape).toEqual([E, N, K]);
        expectClose(await dW.readF32(), expW, { rtol: tol(R), atol: 1e-6, relativeToMax: true, seed, what: `dW ${what}` });
        const dX = groupedMatmulBackwardX(dyT, up(w, [E, N, K]), offT);
        expectClose(await dX.readF32(), expX, { rtol: tol(N), atol: 1e-6, relativeToMax: true, seed, what: `dX ${what}` });
        // Gradient accumulation in place: a second call doubles dW (empty experts stay 0).
        groupedMatmulWeightGrad(dyT, xT, offT, { out: dW, accumulate: true });
        expectClose(
          await dW.readF32(),
          expW.map((v) => 2 * v),
          { rtol: tol(R), atol: 1e-6, relativeToMax: true, seed, what: `dW accumulated ${what}` },
        );
      }
  });

  it('finite differences: grouped forward loss vs dW and dX (tiny)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const R = 6,
      K = 3,
      N = 4,
      E = 3;
    const off = offsetsOf([2, 0, 4]);
    const x = rand(rng, R * K);
    const w = rand(rng, E * N * K);
    const g = rand(rng, R * N);
    const loss = (xv: Float64Array, wv: Float64Array) => {
      let s = 0;
      for (let e = 0; e < E; e++) {
        const rows = off[e + 1]! - off[e]!;
        const y = refMatmul(xv.subarray(off[e]! * K, off[e + 1]! * K), wv.subarray(e * N * K, (e + 1) * N * K), rows, N, K, false, true);
        for (let i = 0; i < rows * N; i++) s += y[i]! * g[off[e]! * N + i]!;
      }
      return s;
    };
    const h = 1e-3;
    const fd = (v: Float64Array, f: (p: Float64Array) => number) =>
      Float64Array.from(v, (_, i) => {
        const p = Float64Array.from(v);
        const m = Float64Array.from(v);
        p[i]! += h;
        m[i]! -= h;
        return (f(p) - f(m)) / (2 * h);
      });
    const offT = rt.upload(off, [E + 1], 'u32');
    const gT = up(g, [R, N]);
    const dW = groupedMatmulWeightGrad(gT, up(x, [R, K]), offT);
    const dX = groupedMatmulBackwardX(gT, up(w, [E, N, K]), offT);
    expectClose(
      await dW.readF32(),
      fd(w, (p) => loss(x, p)),
      { rtol: 1e-5, atol: 1e-6, relativeToMax: true, seed, what: 'FD dW' },
    );
    expectClose(
      await dX.readF32(),
      fd(x, (p) => loss(p, w)),
      { rtol: 1e-5, atol: 1e-6, relativeToMax: true, seed, what: 'FD dX' },
    );
  });
});
