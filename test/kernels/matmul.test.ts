import { describe, it, expect, beforeAll } from 'vitest';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { Tensor } from '../../src/kernels/tensor.ts';
import { matmul, matmulBackward, groupedMatmul, groupedMatmulWeightGrad, groupedMatmulBackwardX, type Activation, type FloatDType } from '../../src/kernels/matmul.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';
import { VARIANTS, type MatmulConfig } from '../../src/kernels/matmul-config.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { matmul as refMatmul } from '../reference/ops.ts';
import { expectClose } from '../reference/compare.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await testRuntime();
});

/**
 * Tolerance: inputs in [-1, 1], f32 products summed over K. Rounding errors of a K-term f32
 * sum grow like sqrt(K)·eps·|partial sums| for random signs (eps = 6e-8); relative to the
 * largest |C| that stays below ~1e-6 for K <= 300. We allow 1e-5·sqrt(K/64) (>= 1e-5), two
 * orders of magnitude above that yet far below the O(1) error of any indexing mistake.
 * Transcendental epilogues (exp/tanh on lavapipe, a few ulp) add 1e-5.
 */
function tol(K: number, act: Activation = 'none'): number {
  return Math.max(1e-5, 1e-5 * Math.sqrt(K / 64)) + (act === 'silu' || act === 'gelu-tanh' ? 1e-5 : 0);
}

const ACTS: Record<Activation, (x: number) => number> = {
  none: (x) => x,
  relu: (x) => Math.max(x, 0),
  silu: (x) => x / (1 + Math.exp(-x)),
  'gelu-tanh': (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
};

function rand(rng: Rng, n: number): Float64Array {
  return toF32(rng.uniformArray(n, -1, 1));
}

function up(x: Float64Array, shape: number[], dtype: FloatDType = 'f32'): Tensor {
  return rt.upload(Float32Array.from(x), shape, dtype);
}

/**
 * Mixed precision. References start from the f16-ROUNDED inputs (rounded here on the host, so
 * the upload is exact); a product of two f16 (or f16 and f32) values is exact or rounded once
 * in f32, so f16 inputs keep the f32 accumulation tolerance tol(K). An f16 OUTPUT adds its
 * storage rounding: 11 significant bits, at most 2^-11 ≈ 4.9e-4 of |value| <= 2^-11·max|ref|
 * (the comparisons are relative to the max), so f16 outputs get tol(K) + F16_ROUND.
 */
const F16_ROUND = 2 ** -11;

function roundTo(x: Float64Array, dtype: FloatDType): Float64Array {
  return dtype === 'f16' ? x.map((v) => f16BitsToF32(f32ToF16Bits(v))) : x;
}

/** Fresh random values in [-1, 1], exactly representable in `dtype`. */
function randAs(rng: Rng, n: number, dtype: FloatDType): Float64Array {
  return roundTo(rand(rng, n), dtype);
}

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** 0: 2-D; otherwise the batch size of A and B (bBroadcast: B stays 2-D). */
  batch: number;
  bBroadcast?: boolean;
  aBroadcast?: boolean;
  bias?: boolean;
  residual?: boolean;
  activation?: Activation;
  alpha?: number;
  accumulate?: boolean;
  config?: Partial<MatmulConfig>;
  /** Storage types of A, B, the residual and the output (default f32; out defaults to A's). */
  dt?: { a?: FloatDType; b?: FloatDType; r?: FloatDType; out?: FloatDType };
}

async function checkCase(c: Case): Promise<void> {
  const seed = freshSeed();
  const rng = new Rng(seed);
  const { M, N, K, transA, transB } = c;
  const nb = Math.max(c.batch, 1);
  const aB = c.batch && !c.aBroadcast ? nb : 1;
  const bB = c.batch && !c.bBroadcast ? nb : 1;
  const dtA = c.dt?.a ?? 'f32';
  const dtB = c.dt?.b ?? 'f32';
  const dtR = c.dt?.r ?? 'f32';
  const dtOut = c.dt?.out ?? dtA;
  const aData = randAs(rng, aB * M * K, dtA);
  const bData = randAs(rng, bB * K * N, dtB);
  const aShape = transA ? [K, M] : [M, K];
  const bShape = transB ? [N, K] : [K, N];
  const a = up(aData, c.batch && !c.aBroadcast ? [nb, ...aShape] : aShape, dtA);
  const b = up(bData, c.batch && !c.bBroadcast ? [nb, ...bShape] : bShape, dtB);
  const outShape = c.batch ? [nb, M, N] : [M, N];
  const bias = c.bias ? rand(rng, N) : null;
  const residual = c.residual ? randAs(rng, nb * M * N, dtR) : null;
  const prior = c.accumulate ? randAs(rng, nb * M * N, dtOut) : null;
  const act = c.activation ?? 'none';
  const alpha = c.alpha ?? 1;

  const expected = new Float64Array(nb * M * N);
  for (let s = 0; s < nb; s++) {
    const as = aData.subarray((aB > 1 ? s : 0) * M * K, ((aB > 1 ? s : 0) + 1) * M * K);
    const bs = bData.subarray((bB > 1 ? s : 0) * K * N, ((bB > 1 ? s : 0) + 1) * K * N);
    const p = refMatmul(as, bs, M, N, K, transA, transB);
    for (let i = 0; i < M * N; i++) {
      const n = i % N;
      const o = s * M * N + i;
      let v = ACTS[act](alpha * p[i]! + (bias ? bias[n]! : 0));
      if (residual) v += residual[o]!;
      if (prior) v += prior[o]!;
      expected[o] = v;
    }
  }
  const out = prior ? up(prior, outShape, dtOut) : undefined;
  const biasT = bias ? up(bias, [N]) : undefined;
  const resT = residual ? up(residual, outShape, dtR) : undefined;
  // A new output is NaN-poisoned by the test runtime (rt.poison), so a skipped element fails.
  const y = matmul(a, b, { transA, transB, bias: biasT, residual: resT, activation: act, alpha, out, accumulate: c.accumulate, config: c.config, outDtype: c.dt?.out });
  expect(y.shape).toEqual(outShape);
  expect(y.dtype).toBe(dtOut);
  const got = await y.readF32();
  const types = c.dt ? ` types a:${dtA} b:${dtB}${residual ? ` r:${dtR}` : ''} out:${dtOut}` : '';
  const what = `matmul ${M}x${N}x${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} batch=${c.batch}${c.bBroadcast ? ' (B shared)' : ''}${c.aBroadcast ? ' (A shared)' : ''} act=${act}${bias ? ' bias' : ''}${residual ? ' residual' : ''}${c.accumulate ? ' accumulate' : ''} alpha=${alpha} config=${JSON.stringify(c.config ?? {})}${types}`;
  expectClose(got, expected, { rtol: tol(K, act) + (dtOut === 'f16' ? F16_ROUND : 0), atol: 1e-6, relativeToMax: true, seed, what });
  for (const t of [a, b, y, biasT, resT]) t?.dispose();
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 130],
  [130, 3, 257],
];
const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const EPILOGUES: Pick<Case, 'bias' | 'residual' | 'activation' | 'alpha'>[] = [
  {},
  { bias: true, activation: 'relu' },
  { bias: true, activation: 'gelu-tanh', residual: true, alpha: 0.5 },
  { activation: 'silu', residual: true, alpha: -1.5 },
];

/** float64 reference of the grouped matmul: rows off[e]..off[e+1] times expert e's weight. */
function groupedRef(x: Float64Array, w: Float64Array, off: ArrayLike<number>, E: number, N: number, K: number, transB: boolean): Float64Array {
  const out = new Float64Array(off[E]! * N);
  for (let e = 0; e < E; e++) {
    const y = refMatmul(x.subarray(off[e]! * K, off[e + 1]! * K), w.subarray(e * N * K, (e + 1) * N * K), off[e + 1]! - off[e]!, N, K, false, transB);
    out.set(y, off[e]! * N);
  }
  return out;
}

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
    for (const [transA, transB] of LAYOUTS)
      for (const e of EPILOGUES) await checkCase({ M: 17, N: 9, K: 67, transA, transB, batch: 0, ...e });
  });

  it('every tile variant of the generator (lane m/n, shared block, vec4 on/off, K unroll)', async () => {
    // Structurally different generator paths (each compiles 4 pipelines, so keep the list short).
    const configs: Partial<MatmulConfig>[] = [
      VARIANTS['v1 naive 1x1, wg 8x8']!,
      VARIANTS['v5 2x8, shared B block + vec4']!,
      { lane: 'n', wgL: 32, wgU: 1, tl: 2, tu: 3, ku: 3, vec4: true },
      { lane: 'n', wgL: 4, wgU: 4, tl: 3, tu: 2, ku: 8, vec4: true },
    ];
    for (const config of configs)
      for (const [transA, transB] of LAYOUTS) await checkCase({ M: 37, N: 21, K: 68, transA, transB, batch: 0, config });
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
});

/** Σ G ⊙ (op(A)·op(B)) in float64: the scalar loss whose gradients matmulBackward returns. */
function lossOf(a: Float64Array, b: Float64Array, g: Float64Array, M: number, N: number, K: number, tA: boolean, tB: boolean, nb: number, aB: number, bB: number): number {
  let s = 0;
  for (let t = 0; t < nb; t++) {
    const as = a.subarray((aB > 1 ? t : 0) * M * K, ((aB > 1 ? t : 0) + 1) * M * K);
    const bs = b.subarray((bB > 1 ? t : 0) * K * N, ((bB > 1 ? t : 0) + 1) * K * N);
    const c = refMatmul(as, bs, M, N, K, tA, tB);
    for (let i = 0; i < M * N; i++) s += c[i]! * g[t * M * N + i]!;
  }
  return s;
}

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
        expectClose(await da!.readF32(), refGrad('a').map((v) => 2 * v), { rtol: tol(N * batch), atol: 1e-6, relativeToMax: true, seed, what: `dA accumulated ${what}` });
        for (const t of [a, b, dy, da, db]) t?.dispose();
      }
    });
  }

  it('finite differences of the float64 loss agree with the GPU gradients (tiny, all layouts)', async () => {
    for (const [transA, transB] of LAYOUTS) {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const M = 3, N = 4, K = 5;
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

/** Random expert row counts summing to R; `zero` forces an empty expert, `all` puts every row on one. */
function counts(rng: Rng, E: number, R: number, mode: 'random' | 'zero' | 'all'): number[] {
  const c = new Array<number>(E).fill(0);
  if (mode === 'all') {
    c[rng.int(E)] = R;
    return c;
  }
  const empty = mode === 'zero' ? rng.int(E) : -1;
  for (let r = 0; r < R; r++) {
    let e = rng.int(E);
    if (e === empty) e = (e + 1) % E;
    c[e]!++;
  }
  return c;
}

function offsetsOf(c: number[]): Uint32Array {
  const o = new Uint32Array(c.length + 1);
  for (let e = 0; e < c.length; e++) o[e + 1] = o[e]! + c[e]!;
  return o;
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
          const seed = freshSeed();
          const rng = new Rng(seed);
          const { R, K, N, E } = s;
          const cnt = counts(rng, E, R, mode);
          const off = offsetsOf(cnt);
          const x = rand(rng, R * K);
          const w = rand(rng, E * N * K);
          const residual = rand(rng, R * N);
          const exp = groupedRef(x, w, off, E, N, K, transB).map((y, i) => 0.5 * y + residual[i]!);
          const offT = rt.upload(off, [E + 1], 'u32');
          const out = groupedMatmul(up(x, [R, K]), up(w, transB ? [E, N, K] : [E, K, N]), offT, { transB, alpha: 0.5, residual: up(residual, [R, N]) });
          expectClose(await out.readF32(), exp, { rtol: tol(K), atol: 1e-6, relativeToMax: true, seed, what: `grouped ${JSON.stringify(s)} ${mode} counts=${cnt} transB=${transB}` });
        }
    });
  }

  it('every tile variant gives the same grouped result', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const R = 77, K = 20, N = 11, E = 4;
    const off = offsetsOf(counts(rng, E, R, 'zero'));
    const x = rand(rng, R * K);
    const w = rand(rng, E * N * K);
    const exp = groupedRef(x, w, off, E, N, K, true);
    const xt = up(x, [R, K]), wt = up(w, [E, N, K]), ot = rt.upload(off, [E + 1], 'u32');
    for (const config of [VARIANTS['v1 naive 1x1, wg 8x8']!, VARIANTS['v5 2x8, shared B block + vec4']!, { wgL: 4, wgU: 2, tl: 3, tu: 5, ku: 2 }]) {
      const out = groupedMatmul(xt, wt, ot, { config });
      expectClose(await out.readF32(), exp, { rtol: tol(K), atol: 1e-6, relativeToMax: true, seed, what: `grouped config ${JSON.stringify(config)}` });
      out.dispose();
    }
  });

  it('weight gradient dW[e] = dY[e]ᵀ·X[e] and dX = dY·W[e] in one dispatch each (empty expert -> zeros)', async () => {
    for (const s of shapes)
      for (const mode of ['zero', 'random', 'all'] as const) {
        const seed = freshSeed();
        const rng = new Rng(seed);
        const { R, K, N, E } = s;
        const cnt = counts(rng, E, R, mode);
        const off = offsetsOf(cnt);
        const x = rand(rng, R * K);
        const w = rand(rng, E * N * K);
        const dy = rand(rng, R * N);
        const offT = rt.upload(off, [E + 1], 'u32');
        const dyT = up(dy, [R, N]);
        const xT = up(x, [R, K]);
        const expW = new Float64Array(E * N * K);
        const expX = new Float64Array(R * K);
        for (let e = 0; e < E; e++) {
          const rows = off[e + 1]! - off[e]!;
          const dys = dy.subarray(off[e]! * N, off[e + 1]! * N);
          expW.set(refMatmul(dys, x.subarray(off[e]! * K, off[e + 1]! * K), N, K, rows, true, false), e * N * K);
          expX.set(refMatmul(dys, w.subarray(e * N * K, (e + 1) * N * K), rows, K, N, false, false), off[e]! * K);
        }
        const what = `${JSON.stringify(s)} ${mode} counts=${cnt}`;
        const dW = groupedMatmulWeightGrad(dyT, xT, offT);
        expect(dW.shape).toEqual([E, N, K]);
        expectClose(await dW.readF32(), expW, { rtol: tol(R), atol: 1e-6, relativeToMax: true, seed, what: `dW ${what}` });
        const dX = groupedMatmulBackwardX(dyT, up(w, [E, N, K]), offT);
        expectClose(await dX.readF32(), expX, { rtol: tol(N), atol: 1e-6, relativeToMax: true, seed, what: `dX ${what}` });
        // Gradient accumulation in place: a second call doubles dW (empty experts stay 0).
        groupedMatmulWeightGrad(dyT, xT, offT, { out: dW, accumulate: true });
        expectClose(await dW.readF32(), expW.map((v) => 2 * v), { rtol: tol(R), atol: 1e-6, relativeToMax: true, seed, what: `dW accumulated ${what}` });
      }
  });

  it('finite differences: grouped forward loss vs dW and dX (tiny)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const R = 6, K = 3, N = 4, E = 3;
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
    expectClose(await dW.readF32(), fd(w, (p) => loss(x, p)), { rtol: 1e-5, atol: 1e-6, relativeToMax: true, seed, what: 'FD dW' });
    expectClose(await dX.readF32(), fd(x, (p) => loss(p, w)), { rtol: 1e-5, atol: 1e-6, relativeToMax: true, seed, what: 'FD dX' });
  });
});

/** x [R, C] row-major -> [C, R]. */
function transpose(x: Float64Array, R: number, C: number): Float64Array {
  const t = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) t[c * R + r] = x[r * C + c]!;
  return t;
}

/**
 * float64 gradients of C = op(A)·op(B) per batch slice: d op(A) = G·op(B)ᵀ, d op(B) = op(A)ᵀ·G,
 * stored like A and B; a broadcast operand (aB or bB = 1) gets the sum over the batch.
 */
function gradRef(aD: Float64Array, bD: Float64Array, g: Float64Array, M: number, N: number, K: number, tA: boolean, tB: boolean, batch: number, aB: number, bB: number): { da: Float64Array; db: Float64Array } {
  const da = new Float64Array(aB * M * K);
  const db = new Float64Array(bB * K * N);
  for (let s = 0; s < batch; s++) {
    const ia = aB > 1 ? s : 0;
    const ib = bB > 1 ? s : 0;
    const as = aD.subarray(ia * M * K, (ia + 1) * M * K);
    const bs = bD.subarray(ib * K * N, (ib + 1) * K * N);
    const gs = g.subarray(s * M * N, (s + 1) * M * N);
    const dOpA = refMatmul(gs, bs, M, K, N, false, !tB); // [M, K]
    const dOpB = refMatmul(as, gs, K, N, M, !tA, false); // [K, N]
    const dAs = tA ? transpose(dOpA, M, K) : dOpA;
    const dBs = tB ? transpose(dOpB, K, N) : dOpB;
    for (let i = 0; i < M * K; i++) da[ia * M * K + i]! += dAs[i]!;
    for (let i = 0; i < K * N; i++) db[ib * K * N + i]! += dBs[i]!;
  }
  return { da, db };
}

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

  it('the device has shader-f16 (these tests need it)', () => {
    expect(rt.gpu.features.f16).toBe(true);
  });

  for (const [i, dt] of COMBOS.entries()) {
    it(`${dt.a}×${dt.b}→${dt.out}: every layout, scalar / k4 / r4 load paths`, async () => {
      for (const [transA, transB] of LAYOUTS) await checkCase({ M: 44, N: 20, K: 96, transA, transB, batch: 0, dt });
      for (const [transA, transB] of SCALAR_LAYOUTS) await checkCase({ M: 37, N: 21, K: 67, transA, transB, batch: 0, dt });
      if (i === 0) for (const [transA, transB] of LAYOUTS) await checkCase({ M: 44, N: 20, K: 13, transA, transB, batch: 0, dt });
    });
  }

  it('f16 output of f16×f16 under every generator variant (scalar, shared block, lane n)', async () => {
    const configs: Partial<MatmulConfig>[] = [
      VARIANTS['v1 naive 1x1, wg 8x8']!,
      VARIANTS['v5 2x8, shared B block + vec4']!,
      { lane: 'n', wgL: 4, wgU: 4, tl: 4, tu: 2, ku: 8, vec4: true },
    ];
    for (const config of configs)
      for (const [transA, transB] of LAYOUTS) await checkCase({ M: 36, N: 21, K: 68, transA, transB, batch: 0, config, dt: { a: 'f16', b: 'f16', out: 'f16' } });
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
    for (const [transA, transB] of LAYOUTS) await checkCase({ M: 33, N: 65, K: 130, transA, transB, batch: 0, accumulate: true, dt: { a: 'f16', b: 'f32', out: 'f16' } });
    for (const [transA, transB] of SCALAR_LAYOUTS)
      await checkCase({ M: 9, N: 5, K: 12, transA, transB, batch: 2, accumulate: true, bias: true, activation: 'silu', alpha: 2, residual: true, dt: { a: 'f32', b: 'f32', r: 'f16', out: 'f16' } });
    // An f32 out accumulating an f16 product.
    await checkCase({ M: 20, N: 12, K: 40, transA: false, transB: true, batch: 0, accumulate: true, dt: { a: 'f16', b: 'f16', out: 'f32' } });
  });

  it('batched: both 3-D, shared B (folded into M), shared A', async () => {
    for (const [transA, transB] of LAYOUTS) await checkCase({ M: 45, N: 19, K: 96, transA, transB, batch: 3, dt: { a: 'f16', b: 'f32', out: 'f16' } });
    for (const [transA, transB] of SCALAR_LAYOUTS) {
      await checkCase({ M: 44, N: 20, K: 13, transA, transB, batch: 2, bBroadcast: true, bias: true, activation: 'relu', dt: { a: 'f16', b: 'f16', out: 'f32' } });
      await checkCase({ M: 7, N: 13, K: 5, transA, transB, batch: 2, aBroadcast: true, dt: { a: 'f32', b: 'f16', out: 'f16' } });
    }
  });

  it('matmulBackward with f16 dy and a, f32 b: dA is f16, dB is f32 (every layout, broadcast operands)', async () => {
    // 2-D on every layout (awkward and vec4 shapes); the broadcast cases (a shared f32 b whose
    // dB sums the batch, incl. the stacked-rows paths of NN / NT; a shared f16 a) on two layouts each.
    const cases: { M: number; N: number; K: number; batch: number; aB: number; bB: number; layouts: [boolean, boolean][] }[] = [
      { M: 7, N: 13, K: 5, batch: 1, aB: 1, bB: 1, layouts: LAYOUTS },
      { M: 36, N: 20, K: 44, batch: 1, aB: 1, bB: 1, layouts: LAYOUTS },
      { M: 8, N: 12, K: 16, batch: 3, aB: 3, bB: 1, layouts: [[false, false], [false, true]] },
      { M: 6, N: 5, K: 9, batch: 2, aB: 1, bB: 2, layouts: [[true, false], [true, true]] },
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
        expectClose(await db!.readF32(), ref.db.map((v) => 2 * v), { rtol: tol(M * batch), atol: 1e-6, relativeToMax: true, seed, what: `dB accumulated ${what}` });
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
        expectClose(await y32.readF32(), groupedRef(x, w16, off, E, N, K, transB), { rtol: tol(K), atol: 1e-6, relativeToMax: true, seed, what: `grouped f16×f16→f32 ${what}` });
        if (!transB) continue;
        // Backward (w stored [E, N, K]): dX = dY·W[e] in dy's dtype, dW = dYᵀ·X in f32.
        const dy = randAs(rng, R * N, 'f16');
        const dyT = up(dy, [R, N], 'f16');
        const expW = new Float64Array(E * N * K);
        const expX = new Float64Array(R * K);
        for (let e = 0; e < E; e++) {
          const rows = off[e + 1]! - off[e]!;
          const dys = dy.subarray(off[e]! * N, off[e + 1]! * N);
          expW.set(refMatmul(dys, x.subarray(off[e]! * K, off[e + 1]! * K), N, K, rows, true, false), e * N * K);
          expX.set(refMatmul(dys, w.subarray(e * N * K, (e + 1) * N * K), rows, K, N, false, false), off[e]! * K);
        }
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
        expectClose(await dW16.readF32(), expW.map((v) => 2 * v), { rtol: tol(R) + 2 * F16_ROUND, atol: 1e-6, relativeToMax: true, seed, what: `dW f16 accumulated ${what}` });
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
    const noF16 = Object.create(rt, { gpu: { value: { ...rt.gpu, features: { ...rt.gpu.features, f16: false } } } }) as Runtime;
    const h = rt.zeros([3, 4], 'f16');
    const h16 = new Tensor(noF16, h.shape, 'f16', h.buffer, 'no-f16');
    const a32 = new Tensor(noF16, a.shape, 'f32', a.buffer, 'a32');
    expect(() => matmul(h16, b)).toThrow(/shader-f16/);
    expect(() => matmul(a32, b, { outDtype: 'f16' })).toThrow(/shader-f16/);
    expect(() => groupedMatmul(h16, rt.zeros([1, 6, 4]), rt.upload([0, 3], [2], 'u32'))).toThrow(/shader-f16/);
  });
});
