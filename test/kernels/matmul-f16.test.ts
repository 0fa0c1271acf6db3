/** Matmul family with f16 operands (f32 math), split from matmul.test.ts so the two compile in parallel. */
import { describe, it, expect, beforeAll, beforeEach } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { Tensor } from '../../src/kernels/tensor.ts';
import { matmul, matmulBackward, groupedMatmul, groupedMatmulWeightGrad, groupedMatmulBackwardX, type FloatDType } from '../../src/kernels/matmul.ts';
import { VARIANTS, type MatmulConfigOverride } from '../../src/kernels/matmul-config.ts';
import { Rng, freshSeed } from '../reference/rng.ts';
import { matmulRef as refMatmul } from '../reference/matmul-ref.ts';
import { expectClose } from '../reference/compare.ts';
import { skipWithoutF16 } from '../reference/gpu.ts';
import {
  initRuntime,
  rt,
  tol,
  rand,
  up,
  F16_ROUND,
  roundTo,
  randAs,
  type Case,
  checkCase,
  LAYOUTS,
  groupedRef,
  groupedBackwardRef,
  counts,
  offsetsOf,
  gradRef,
} from './matmul-cases.ts';

beforeAll(initRuntime);
// Every case here has an f16 operand: on a device without shader-f16 each is skipped, the
// reason as its note (the f32 paths are matmul.test.ts; the refusal is tested there too).
beforeEach((ctx) => skipWithoutF16(rt, ctx));

describe('mixed precision: f16 / f32 storage per operand, f32 math', () => {
  const COMBOS: { a: FloatDType; b: FloatDType; out: FloatDType }[] = [
    { a: 'f16', b: 'f32', out: 'f16' },
    { a: 'f16', b: 'f16', out: 'f32' },
    { a: 'f32', b: 'f16', out: 'f32' },
  ];
  // Each case compiles its own pipeline (seconds each on lavapipe), so the lists below cover each
  // operand type in each load mode without taking every product of them:
  //   [44, 20, 96]: K, M, N % 4 == 0, so over the four layouts A and B each load k4 (K contiguous)
  //                 and r4 (rows contiguous);
  //   [37, 21, 67]: scalar loads (NN and TT cover both strides of both operands);
  //   [44, 20, 13]: r4 with a K remainder (the remainder loop's vec4 loads).
  const SCALAR_LAYOUTS: [boolean, boolean][] = [
    [false, false],
    [true, true],
  ];

  for (const [i, dt] of COMBOS.entries()) {
    it(`${dt.a}×${dt.b}→${dt.out}: every layout, scalar / k4 / r4 load paths`, async () => {
      for (const [transA, transB] of LAYOUTS) await checkCase({ M: 44, N: 20, K: 96, transA, transB, batch: 0, dt });
      for (const [transA, transB] of SCALAR_LAYOUTS) await checkCase({ M: 37, N: 21, K: 67, transA, transB, batch: 0, dt });
      if (i === 0) for (const [transA, transB] of LAYOUTS) await checkCase({ M: 44, N: 20, K: 13, transA, transB, batch: 0, dt });
    });
  }

  it('f16 output of f16×f16 under every generator variant (scalar, shared block, lane n)', async () => {
    const configs: MatmulConfigOverride[] = [
      VARIANTS['v1 naive 1x1, wg 8x8']!,
      VARIANTS['v5 2x8, shared B block + vec4']!,
      { lane: 'n', wgL: 4, wgU: 4, tl: 4, tu: 2, ku: 8, vec4: true },
      { kind: 'tiled', tx: 4, ty: 2, rm: 3, rn: 5, bk: 12, prefetch: true },
    ];
    for (const config of configs)
      for (const [transA, transB] of LAYOUTS)
        await checkCase({ M: 36, N: 21, K: 68, transA, transB, batch: 0, config, dt: { a: 'f16', b: 'f16', out: 'f16' } });
  });

  it('bias + activation + f16 residual epilogue, f16 and f32 outputs', async () => {
    const cases: Omit<Case, 'transA' | 'transB'>[] = [
      { M: 17, N: 9, K: 67, batch: 0, bias: true, activation: 'gelu-tanh', residual: true, alpha: 0.5, dt: { a: 'f16', b: 'f32', r: 'f16', out: 'f16' } },
      { M: 44, N: 20, K: 96, batch: 0, bias: true, activation: 'relu', residual: true, dt: { a: 'f16', b: 'f16', r: 'f16', out: 'f32' } },
      { M: 12, N: 8, K: 68, batch: 0, activation: 'silu', residual: true, alpha: -1.5, dt: { a: 'f32', b: 'f32', r: 'f16', out: 'f32' } },
    ];
    // Every case on two layouts, rotating (the epilogue does not depend on the layout).
    for (const [l, [transA, transB]] of LAYOUTS.entries())
      for (const [i, c] of cases.entries()) if ((l + i) % 2 === 0) await checkCase({ ...c, transA, transB });
  });

  it('accumulate into an f16 out (f16 and f32 operands, with and without epilogue)', async () => {
    for (const [transA, transB] of LAYOUTS)
      await checkCase({ M: 33, N: 65, K: 130, transA, transB, batch: 0, accumulate: true, dt: { a: 'f16', b: 'f32', out: 'f16' } });
    for (const [transA, transB] of SCALAR_LAYOUTS)
      await checkCase({
        M: 9,
        N: 5,
        K: 12,
        transA,
        transB,
        batch: 2,
        accumulate: true,
        bias: true,
        activation: 'silu',
        alpha: 2,
        residual: true,
        dt: { a: 'f32', b: 'f32', r: 'f16', out: 'f16' },
      });
    // An f32 out accumulating an f16 product.
    await checkCase({ M: 20, N: 12, K: 40, transA: false, transB: true, batch: 0, accumulate: true, dt: { a: 'f16', b: 'f16', out: 'f32' } });
  });

  it('batched: both 3-D, shared B (folded into M), shared A', async () => {
    for (const [transA, transB] of LAYOUTS) await checkCase({ M: 45, N: 19, K: 96, transA, transB, batch: 3, dt: { a: 'f16', b: 'f32', out: 'f16' } });
    for (const [transA, transB] of SCALAR_LAYOUTS) {
      await checkCase({
        M: 44,
        N: 20,
        K: 13,
        transA,
        transB,
        batch: 2,
        bBroadcast: true,
        bias: true,
        activation: 'relu',
        dt: { a: 'f16', b: 'f16', out: 'f32' },
      });
      await checkCase({ M: 7, N: 13, K: 5, transA, transB, batch: 2, aBroadcast: true, dt: { a: 'f32', b: 'f16', out: 'f16' } });
    }
  });

  it('matmulBackward with f16 dy and a, f32 b: dA is f16, dB is f32 (every layout, broadcast operands)', async () => {
    // 2-D on every layout (awkward and vec4 shapes); the broadcast cases (a shared f32 b whose
    // dB sums the batch, incl. the stacked-rows paths of NN / NT; a shared f16 a) on two layouts each.
    const cases: { M: number; N: number; K: number; batch: number; aB: number; bB: number; layouts: [boolean, boolean][] }[] = [
      { M: 7, N: 13, K: 5, batch: 1, aB: 1, bB: 1, layouts: LAYOUTS },
      { M: 36, N: 20, K: 44, batch: 1, aB: 1, bB: 1, layouts: LAYOUTS },
      {
        M: 8,
        N: 12,
        K: 16,
        batch: 3,
        aB: 3,
        bB: 1,
        layouts: [
          [false, false],
          [false, true],
        ],
      },
      {
        M: 6,
        N: 5,
        K: 9,
        batch: 2,
        aB: 1,
        bB: 2,
        layouts: [
          [true, false],
          [true, true],
        ],
      },
    ];
    for (const c of cases)
      for (const [transA, transB] of c.layouts) {
        const seed = freshSeed();
        const rng = new Rng(seed);
        const { M, N, K, batch, aB, bB } = c;
        const aData = randAs(rng, aB * M * K, 'f16');
        const bData = randAs(rng, bB * K * N, 'f32');
        const g = randAs(rng, batch * M * N, 'f16');
        const batched = aB > 1 || bB > 1;
        const aShape = transA ? [K, M] : [M, K];
        const bShape = transB ? [N, K] : [K, N];
        const a = up(aData, aB > 1 ? [aB, ...aShape] : aShape, 'f16');
        const b = up(bData, bB > 1 ? [bB, ...bShape] : bShape, 'f32');
        const dy = up(g, batched ? [batch, M, N] : [M, N], 'f16');
        const { da, db } = matmulBackward(dy, a, b, { transA, transB });
        const ref = gradRef(aData, bData, g, M, N, K, transA, transB, batch, aB, bB);
        const what = `${JSON.stringify({ M, N, K, batch, aB, bB })} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
        expect(da!.dtype).toBe('f16');
        expect(db!.dtype).toBe('f32');
        expect(da!.shape).toEqual(a.shape);
        expect(db!.shape).toEqual(b.shape);
        // A broadcast f16 dA sums the batch slice by slice in f16 storage: one rounding per slice.
        const daRounds = aB === 1 ? batch : 1;
        expectClose(await da!.readF32(), ref.da, { rtol: tol(N * batch) + daRounds * F16_ROUND, atol: 1e-6, relativeToMax: true, seed, what: `dA ${what}` });
        expectClose(await db!.readF32(), ref.db, { rtol: tol(M * batch), atol: 1e-6, relativeToMax: true, seed, what: `dB ${what}` });
        // Gradients into given tensors of the other dtype: an f32 dA (fresh, poisoned), and the
        // f32 dB accumulated a second time (doubles).
        const da32 = rt.empty(a.shape, 'f32', 'dA f32');
        matmulBackward(dy, a, b, { transA, transB, outA: da32, outB: db, accumulate: false, needB: false });
        matmulBackward(dy, a, b, { transA, transB, outB: db, accumulate: true, needA: false });
        expectClose(await da32.readF32(), ref.da, { rtol: tol(N * batch), atol: 1e-6, relativeToMax: true, seed, what: `dA into f32 ${what}` });
        expectClose(
          await db!.readF32(),
          ref.db.map((v) => 2 * v),
          { rtol: tol(M * batch), atol: 1e-6, relativeToMax: true, seed, what: `dB accumulated ${what}` },
        );
        for (const t of [a, b, dy, da, db, da32]) t?.dispose();
      }
  });

  it('grouped forward / backwardX / weight grad with f16 x', async () => {
    const shapes: { R: number; K: number; N: number; E: number }[] = [
      { R: 37, K: 13, N: 21, E: 5 },
      { R: 50, K: 12, N: 36, E: 3 },
      { R: 130, K: 64, N: 32, E: 8 },
    ];
    for (const s of shapes)
      for (const transB of [true, false]) {
        const seed = freshSeed();
        const rng = new Rng(seed);
        const { R, K, N, E } = s;
        const cnt = counts(rng, E, R, 'zero');
        const off = offsetsOf(cnt);
        const offT = rt.upload(off, [E + 1], 'u32');
        const x = randAs(rng, R * K, 'f16');
        const w = randAs(rng, E * N * K, 'f32');
        const residual = randAs(rng, R * N, 'f16');
        const what = `${JSON.stringify(s)} transB=${transB} counts=${cnt}`;
        const xT = up(x, [R, K], 'f16');
        const wT = up(w, transB ? [E, N, K] : [E, K, N], 'f32');
        // f16 x · f32 w + f16 residual -> f16 (x's dtype, the default).
        const y = groupedMatmul(xT, wT, offT, { transB, alpha: 0.5, residual: up(residual, [R, N], 'f16') });
        expect(y.dtype).toBe('f16');
        const expY = groupedRef(x, w, off, E, N, K, transB).map((v, i) => 0.5 * v + residual[i]!);
        expectClose(await y.readF32(), expY, { rtol: tol(K) + F16_ROUND, atol: 1e-6, relativeToMax: true, seed, what: `grouped f16×f32→f16 ${what}` });
        // f16 x · f16 w -> f32 by outDtype.
        const w16 = roundTo(w, 'f16');
        const y32 = groupedMatmul(xT, up(w16, transB ? [E, N, K] : [E, K, N], 'f16'), offT, { transB, outDtype: 'f32' });
        expect(y32.dtype).toBe('f32');
        expectClose(await y32.readF32(), groupedRef(x, w16, off, E, N, K, transB), {
          rtol: tol(K),
          atol: 1e-6,
          relativeToMax: true,
          seed,
          what: `grouped f16×f16→f32 ${what}`,
        });
        if (!transB) continue;
        // Backward (w stored [E, N, K]): dX = dY·W[e] in dy's dtype, dW = dYᵀ·X in f32.
        const dy = randAs(rng, R * N, 'f16');
        const dyT = up(dy, [R, N], 'f16');
        const { expW, expX } = groupedBackwardRef(dy, x, w, off, E, N, K, R);
        const dX = groupedMatmulBackwardX(dyT, wT, offT);
        expect(dX.dtype).toBe('f16');
        expectClose(await dX.readF32(), expX, { rtol: tol(N) + F16_ROUND, atol: 1e-6, relativeToMax: true, seed, what: `dX f16 ${what}` });
        const dW = groupedMatmulWeightGrad(dyT, xT, offT);
        expect(dW.dtype).toBe('f32');
        expectClose(await dW.readF32(), expW, { rtol: tol(R), atol: 1e-6, relativeToMax: true, seed, what: `dW f32 ${what}` });
        // An f16 dW (empty experts must come out as zeros, not poison), then accumulated once more:
        // two f16 roundings (of v, then of 2v) stay below 1.5·2^-11 of max|2v|.
        const dW16 = groupedMatmulWeightGrad(dyT, xT, offT, { outDtype: 'f16' });
        expect(dW16.dtype).toBe('f16');
        expectClose(await dW16.readF32(), expW, { rtol: tol(R) + F16_ROUND, atol: 1e-6, relativeToMax: true, seed, what: `dW f16 ${what}` });
        groupedMatmulWeightGrad(dyT, xT, offT, { out: dW16, accumulate: true });
        expectClose(
          await dW16.readF32(),
          expW.map((v) => 2 * v),
          { rtol: tol(R) + 2 * F16_ROUND, atol: 1e-6, relativeToMax: true, seed, what: `dW f16 accumulated ${what}` },
        );
      }
  });

  it('K = 0 into an f16 output gives act(bias)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const bias = rand(rng, 6);
    const y = matmul(rt.zeros([4, 0], 'f16'), rt.zeros([0, 6]), { bias: up(bias, [6]), activation: 'relu' });
    expect(y.dtype).toBe('f16');
    const exp = new Float64Array(24).map((_, i) => Math.max(bias[i % 6]!, 0));
    expectClose(await y.readF32(), exp, { rtol: F16_ROUND, seed, what: 'K=0 f16' });
  });

  it('rejects other dtypes, an f16 bias, an outDtype that contradicts out, and f16 without shader-f16', () => {
    const a = rt.zeros([3, 4]);
    const b = rt.zeros([4, 6]);
    expect(() => matmul(rt.zeros([3, 4], 'i32'), b)).toThrow(/must be f32 or f16/);
    expect(() => matmul(a, b, { outDtype: 'u32' as FloatDType })).toThrow(/outDtype must be f32 or f16/);
    expect(() => matmul(a, b, { bias: rt.zeros([6], 'f16') })).toThrow(/must be f32/);
    expect(() => matmul(a, b, { out: rt.zeros([3, 6], 'f16'), outDtype: 'f32' })).toThrow(/outDtype/);
    expect(() => matmulBackward(rt.zeros([3, 6]), a, b, { outA: rt.zeros([3, 4], 'u32') })).toThrow(/must be f32 or f16/);
    expect(() => groupedMatmulWeightGrad(rt.zeros([3, 6], 'i32'), a, rt.upload([0, 3], [2], 'u32'))).toThrow(/must be f32 or f16/);
    // A runtime view whose device lacks shader-f16: rejected before anything is recorded.
    const noF16 = Object.create(rt, { caps: { value: { ...rt.caps, f16: false } } }) as DawnRuntime;
    const h = rt.zeros([3, 4], 'f16');
    const h16 = new Tensor(noF16, h.shape, 'f16', h.buffer, 'no-f16');
    const a32 = new Tensor(noF16, a.shape, 'f32', a.buffer, 'a32');
    expect(() => matmul(h16, b)).toThrow(/shader-f16/);
    expect(() => matmul(a32, b, { outDtype: 'f16' })).toThrow(/shader-f16/);
    expect(() => groupedMatmul(h16, rt.zeros([1, 6, 4]), rt.upload([0, 3], [2], 'u32'))).toThrow(/shader-f16/);
  });
});
