/** Shared float64 references, tolerances and case runners of the matmul tests (matmul*.test.ts). */
import { expect } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { Tensor } from '../../src/kernels/tensor.ts';
import { matmul, matmulBackward, type Activation, type FloatDType } from '../../src/kernels/matmul.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';
import { forceMatmul, type MatmulConfigOverride } from '../../src/kernels/matmul-config.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, toF32, seeded } from '../reference/rng.ts';
import { matmulRef as refMatmul } from '../reference/matmul-ref.ts';
import { expectClose } from '../reference/compare.ts';

/** The shared test runtime: call initRuntime from each file's beforeAll. */
export let rt: DawnRuntime;
export async function initRuntime(): Promise<void> {
  rt = await testRuntime();
}

/**
 * Tolerance: inputs in [-1, 1], f32 products summed over K. Rounding errors of a K-term f32
 * sum grow like sqrt(K)·eps·|partial sums| for random signs (eps = 6e-8); relative to the
 * largest |C| that stays below ~1e-6 for K <= 300. We allow 1e-5·sqrt(K/64) (>= 1e-5), two
 * orders of magnitude above that yet far below the O(1) error of any indexing mistake.
 * Transcendental epilogues (exp/tanh on lavapipe, a few ulp) add 1e-5.
 */
export function tol(K: number, act: Activation = 'none'): number {
  return Math.max(1e-5, 1e-5 * Math.sqrt(K / 64)) + (act === 'silu' || act === 'gelu-tanh' ? 1e-5 : 0);
}

export const ACTS: Record<Activation, (x: number) => number> = {
  none: (x) => x,
  relu: (x) => Math.max(x, 0),
  silu: (x) => x / (1 + Math.exp(-x)),
  'gelu-tanh': (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
};

export function rand(rng: Rng, n: number): Float64Array {
  return toF32(rng.uniformArray(n, -1, 1));
}

export function up(x: Float64Array, shape: number[], dtype: FloatDType = 'f32'): Tensor {
  return rt.upload(Float32Array.from(x), shape, dtype);
}

/**
 * Mixed precision. References start from the f16-ROUNDED inputs (rounded here on the host, so
 * the upload is exact); a product of two f16 (or f16 and f32) values is exact or rounded once
 * in f32, so f16 inputs keep the f32 accumulation tolerance tol(K). An f16 OUTPUT adds its
 * storage rounding: 11 significant bits, at most 2^-11 ≈ 4.9e-4 of |value| <= 2^-11·max|ref|
 * (the comparisons are relative to the max), so f16 outputs get tol(K) + F16_ROUND.
 */
export const F16_ROUND = 2 ** -11;

export function roundTo(x: Float64Array, dtype: FloatDType): Float64Array {
  return dtype === 'f16' ? x.map((v) => f16BitsToF32(f32ToF16Bits(v))) : x;
}

/** Fresh random values in [-1, 1], exactly representable in `dtype`. */
export function randAs(rng: Rng, n: number, dtype: FloatDType): Float64Array {
  return roundTo(rand(rng, n), dtype);
}

export interface Case {
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
  config?: MatmulConfigOverride;
  /** Storage types of A, B, the residual and the output (default f32; out defaults to A's). */
  dt?: { a?: FloatDType; b?: FloatDType; r?: FloatDType; out?: FloatDType };
}

export async function checkCase(c: Case): Promise<void> {
  const { seed, rng } = seeded();
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
  // A configuration is forced through the policy (the one override mechanism).
  const y = rt.withPolicy(c.config ? forceMatmul(c.config) : {}, () =>
    matmul(a, b, { transA, transB, bias: biasT, residual: resT, activation: act, alpha, out, accumulate: c.accumulate, outDtype: c.dt?.out }),
  );
  expect(y.shape).toEqual(outShape);
  expect(y.dtype).toBe(dtOut);
  const got = await y.readF32();
  const types = c.dt ? ` types a:${dtA} b:${dtB}${residual ? ` r:${dtR}` : ''} out:${dtOut}` : '';
  const what = `matmul ${M}x${N}x${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} batch=${c.batch}${c.bBroadcast ? ' (B shared)' : ''}${c.aBroadcast ? ' (A shared)' : ''} act=${act}${bias ? ' bias' : ''}${residual ? ' residual' : ''}${c.accumulate ? ' accumulate' : ''} alpha=${alpha} config=${JSON.stringify(c.config ?? {})}${types}`;
  expectClose(got, expected, { rtol: tol(K, act) + (dtOut === 'f16' ? F16_ROUND : 0), atol: 1e-6, relativeToMax: true, seed, what });
  for (const t of [a, b, y, biasT, resT]) t?.dispose();
}

export const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 130],
  [130, 3, 257],
];
export const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
export const EPILOGUES: Pick<Case, 'bias' | 'residual' | 'activation' | 'alpha'>[] = [
  {},
  { bias: true, activation: 'relu' },
  { bias: true, activation: 'gelu-tanh', residual: true, alpha: 0.5 },
  { activation: 'silu', residual: true, alpha: -1.5 },
];

/** float64 reference of the grouped matmul: rows off[e]..off[e+1] times expert e's weight. */
export function groupedRef(x: Float64Array, w: Float64Array, off: ArrayLike<number>, E: number, N: number, K: number, transB: boolean): Float64Array {
  const out = new Float64Array(off[E]! * N);
  for (let e = 0; e < E; e++) {
    const y = refMatmul(x.subarray(off[e]! * K, off[e + 1]! * K), w.subarray(e * N * K, (e + 1) * N * K), off[e + 1]! - off[e]!, N, K, false, transB);
    out.set(y, off[e]! * N);
  }
  return out;
}

/** A batched product's shape: op(A) [M, K] times op(B) [K, N] over `batch` slices, aB and bB of them stored (1: broadcast). */
type ProductDims = [M: number, N: number, K: number, tA: boolean, tB: boolean, batch: number, aB: number, bB: number];

/** Σ G ⊙ (op(A)·op(B)) in float64: the scalar loss whose gradients matmulBackward returns. */
export function lossOf(a: Float64Array, b: Float64Array, g: Float64Array, ...dims: ProductDims): number {
  const [M, N, K, tA, tB, nb, aB, bB] = dims;
  let s = 0;
  for (let t = 0; t < nb; t++) {
    const as = a.subarray((aB > 1 ? t : 0) * M * K, ((aB > 1 ? t : 0) + 1) * M * K);
    const bs = b.subarray((bB > 1 ? t : 0) * K * N, ((bB > 1 ? t : 0) + 1) * K * N);
    const c = refMatmul(as, bs, M, N, K, tA, tB);
    for (let i = 0; i < M * N; i++) s += c[i]! * g[t * M * N + i]!;
  }
  return s;
}

/** Random expert row counts summing to R; `zero` forces an empty expert, `all` puts every row on one. */
export function counts(rng: Rng, E: number, R: number, mode: 'random' | 'zero' | 'all'): number[] {
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

export function offsetsOf(c: number[]): Uint32Array {
  const o = new Uint32Array(c.length + 1);
  for (let e = 0; e < c.length; e++) o[e + 1] = o[e]! + c[e]!;
  return o;
}

/** x [R, C] row-major -> [C, R]. */
export function transpose(x: Float64Array, R: number, C: number): Float64Array {
  const t = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) t[c * R + r] = x[r * C + c]!;
  return t;
}

/**
 * float64 gradients of C = op(A)·op(B) per batch slice: d op(A) = G·op(B)ᵀ, d op(B) = op(A)ᵀ·G,
 * stored like A and B; a broadcast operand (aB or bB = 1) gets the sum over the batch.
 */
export function gradRef(aD: Float64Array, bD: Float64Array, g: Float64Array, ...dims: ProductDims): { da: Float64Array; db: Float64Array } {
  const [M, N, K, tA, tB, batch, aB, bB] = dims;
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

/** float64 gradients of the grouped matmul with w [E, N, K]: dW[e] = dY[e rows]ᵀ·X[e rows], dX = dY·W[e]. */
export function groupedBackwardRef(
  dy: Float64Array,
  x: Float64Array,
  w: Float64Array,
  off: ArrayLike<number>,
  E: number,
  N: number,
  K: number,
  R: number,
): { expW: Float64Array; expX: Float64Array } {
  const expW = new Float64Array(E * N * K);
  const expX = new Float64Array(R * K);
  for (let e = 0; e < E; e++) {
    const rows = off[e + 1]! - off[e]!;
    const dys = dy.subarray(off[e]! * N, off[e + 1]! * N);
    expW.set(refMatmul(dys, x.subarray(off[e]! * K, off[e + 1]! * K), N, K, rows, true, false), e * N * K);
    expX.set(refMatmul(dys, w.subarray(e * N * K, (e + 1) * N * K), rows, K, N, false, false), off[e]! * K);
  }
  return { expW, expX };
}
