import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import {
  unary,
  binary,
  axpy,
  copy,
  cast,
  broadcastView,
  siluBackward,
  sigmoidBackward,
  tanhBackward,
  reluBackward,
  mulBackward,
  addBackward,
  sumToShape,
  UNARY_OPS,
  type UnaryOp,
  type BinaryOp,
} from '../../src/kernels/elementwise.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/f16.ts';
import { testRuntime, skipWithoutF16 } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { projectedNumericGrad } from '../reference/ops.ts';
import { BINARY_REF, bIndex, sigmoid as sigmoidRef, silu as siluRef } from '../reference/elementwise-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const prod = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

const up = (a: ArrayLike<number>, shape: readonly number[]) => rt.upload(Float32Array.from(a), shape);
const dispose = (...ts: Tensor[]) => ts.forEach((t) => t.dispose());

// Each op: float64 reference, input range (log/sqrt/rsqrt need x > 0), tolerance per element.
// Tolerances: WGSL's exp/log/sqrt/tanh are allowed a few ulp (exp/log: 3 + 2|x| ulp, tanh via
// exp), so 1e-5 relative with a 1e-6 absolute floor near zero; exact ops (neg, square, scale)
// are correctly rounded f32 and get 2e-7.
const UNARY_REF: Record<UnaryOp, { f: (x: number, alpha: number) => number; lo: number; hi: number; rtol: number }> = {
  neg: { f: (x) => -x, lo: -5, hi: 5, rtol: 0 },
  exp: { f: Math.exp, lo: -20, hi: 20, rtol: 1e-5 },
  log: { f: Math.log, lo: 1e-3, hi: 100, rtol: 1e-5 },
  sqrt: { f: Math.sqrt, lo: 0, hi: 100, rtol: 1e-5 },
  rsqrt: { f: (x) => 1 / Math.sqrt(x), lo: 1e-2, hi: 100, rtol: 1e-5 },
  sigmoid: { f: sigmoidRef, lo: -30, hi: 30, rtol: 1e-5 },
  silu: { f: siluRef, lo: -30, hi: 30, rtol: 1e-5 },
  relu: { f: (x) => Math.max(x, 0), lo: -5, hi: 5, rtol: 0 },
  tanh: { f: Math.tanh, lo: -12, hi: 12, rtol: 1e-5 },
  square: { f: (x) => x * x, lo: -5, hi: 5, rtol: 2e-7 },
  scale: { f: (x, a) => a * x, lo: -5, hi: 5, rtol: 2e-7 },
  addScalar: { f: (x, a) => x + a, lo: -5, hi: 5, rtol: 2e-7 },
  identity: { f: (x) => x, lo: -5, hi: 5, rtol: 0 },
};

/** Central differences of sum(dy * f(x)) in float64, step 1e-5. */
const fdGrad = (f: (x: Float64Array) => Float64Array, x: Float64Array, dy: ArrayLike<number>) => projectedNumericGrad(f, x, dy, 1e-5);

describe('unary ops', () => {
  for (const op of Object.keys(UNARY_OPS) as UnaryOp[]) {
    it(`${op} on [7, 37] (259 elements, not a multiple of 256)`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const r = UNARY_REF[op];
      const x = toF32(rng.uniformArray(259, r.lo, r.hi));
      const alpha = Math.fround(rng.uniform(-3, 3));
      const t = up(x, [7, 37]);
      const y = unary(op, t, alpha);
      expect(y.shape).toEqual([7, 37]);
      expectClose(
        await y.readF32(),
        Float64Array.from(x, (v) => r.f(v, alpha)),
        { rtol: r.rtol, atol: r.rtol ? 1e-6 : 0, seed, what: op },
      );
      dispose(t, y);
    });
  }

  it('saturates sigmoid, silu and tanh without NaN at extreme inputs', async () => {
    const x = [-1e4, -100, -89, 89, 100, 1e4, 0, -0];
    const t = up(x, [8]);
    for (const op of ['sigmoid', 'silu', 'tanh'] as const) {
      const y = unary(op, t);
      // exact limits: f32 results are 0, +-1 or x itself (silu for large x); 1e-6 absolute.
      expectClose(
        await y.readF32(),
        x.map((v) => UNARY_REF[op].f(v, 0)),
        { rtol: 1e-6, atol: 1e-6, what: op },
      );
      y.dispose();
    }
    t.dispose();
  });

  it('covers more than 65535 workgroups of elements (2-D grid fold)', async () => {
    const n = 65_535 * 256 + 300; // one workgroup row and part of a second
    const t = rt.zeros([n]);
    const y = unary('addScalar', t, 1.5);
    const d = await y.readF32();
    let bad = 0;
    for (let i = 0; i < n; i++) if (d[i] !== 1.5) bad++;
    expect(bad).toBe(0);
    dispose(t, y);
  });
});

describe('binary ops with broadcasting', () => {
  const shapes: [number[], number[]][] = [
    [
      [7, 33],
      [7, 33],
    ],
    [[7, 33], [33]],
    [
      [7, 33],
      [7, 1],
    ],
    [
      [3, 5, 17],
      [3, 1, 17],
    ],
    [
      [3, 5, 17],
      [5, 17],
    ],
    [[3, 5, 17], [1]],
    [
      [2, 3, 5, 7],
      [2, 1, 1, 7],
    ],
    [
      [1, 300],
      [1, 1],
    ],
    [
      [4, 1, 9],
      [4, 1, 1],
    ],
  ];
  for (const [aShape, bShape] of shapes) {
    it(`[${aShape}] op [${bShape}]`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const a = toF32(rng.uniformArray(prod(aShape), -3, 3));
      // keep |b| >= 0.5 so div stays well conditioned
      const b = toF32(Float64Array.from(rng.uniformArray(prod(bShape), 0.5, 3), (v) => (rng.next() < 0.5 ? -v : v)));
      const ta = up(a, aShape);
      const tb = up(b, bShape);
      for (const op of Object.keys(BINARY_REF) as (keyof typeof BINARY_REF)[]) {
        const y = binary(op as BinaryOp, ta, tb);
        expect(y.shape).toEqual(aShape);
        const ref = Float64Array.from(a, (v, i) => BINARY_REF[op](v, b[bIndex(i, aShape, bShape)]!));
        // one correctly rounded f32 operation (div: WGSL allows 2.5 ulp)
        expectClose(await y.readF32(), ref, { rtol: 4e-7, seed, what: `${op} [${aShape}] [${bShape}]` });
        y.dispose();
      }
      dispose(ta, tb);
    });
  }

  it('rejects shapes that do not broadcast along one run', () => {
    expect(() => broadcastView([3, 5, 7], [3, 5])).toThrow(/cannot broadcast/);
    expect(() => broadcastView([3, 5, 7], [1, 5, 1])).toThrow(/cannot broadcast/);
    expect(() => broadcastView([3], [2, 3])).toThrow(/cannot broadcast/);
    expect(broadcastView([4, 6], [6])).toEqual({ o: 1, m: 4, n: 6 });
    expect(broadcastView([4, 6], [4, 1])).toEqual({ o: 4, m: 6, n: 1 });
    expect(broadcastView([4, 6], [4, 6])).toEqual({ o: 1, m: 1, n: 24 });
  });
});

describe('backward helpers', () => {
  it('silu / sigmoid / tanh / relu backward: analytic and finite differences', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const n = 131;
    const x = toF32(rng.uniformArray(n, -6, 6));
    const dy = toF32(rng.uniformArray(n, -1, 1));
    const tx = up(x, [n]);
    const tdy = up(dy, [n]);
    const sig = toF32(x.map(sigmoidRef));
    const th = toF32(x.map(Math.tanh));
    const tsig = up(sig, [n]);
    const tth = up(th, [n]);
    const cases: [string, Tensor, (v: number) => number, Float64Array][] = [
      ['silu', siluBackward(tx, tdy), siluRef, Float64Array.from(x, (v, i) => dy[i]! * sigmoidRef(v) * (1 + v * (1 - sigmoidRef(v))))],
      ['sigmoid', sigmoidBackward(tsig, tdy), sigmoidRef, Float64Array.from(sig, (s, i) => dy[i]! * s * (1 - s))],
      ['tanh', tanhBackward(tth, tdy), Math.tanh, Float64Array.from(th, (t, i) => dy[i]! * (1 - t * t))],
    ];
    for (const [name, g, f, analytic] of cases) {
      const got = await g.readF32();
      // a handful of f32 ops on O(1) values: 1e-5 relative to the largest gradient
      expectClose(got, analytic, { rtol: 1e-5, relativeToMax: true, seed, what: `${name} analytic` });
      // finite differences of the float64 forward (h = 1e-5: truncation ~1e-10, cancellation ~1e-11);
      // the GPU used f32-rounded sigmoid/tanh outputs, so 1e-5 again.
      expectClose(
        got,
        fdGrad((v) => v.map(f), x, dy),
        { rtol: 1e-5, relativeToMax: true, seed, what: `${name} finite differences` },
      );
      g.dispose();
    }
    const gr = reluBackward(tx, tdy);
    expect(Array.from(await gr.readF32())).toEqual(Array.from(x, (v, i) => (v > 0 ? Math.fround(dy[i]!) : 0)));
    dispose(tx, tdy, tsig, tth, gr);
  });

  for (const [aShape, bShape] of [
    [[5, 7], [7]],
    [
      [5, 7],
      [5, 1],
    ],
    [
      [2, 3, 4],
      [2, 1, 4],
    ],
    [[3, 301], [301]], // long broadcast run (chunked sum)
  ] as [number[], number[]][]) {
    it(`mul / add backward for [${aShape}] x [${bShape}]`, async () => {
      const seed = freshSeed();
      const rng = new Rng(seed);
      const a = toF32(rng.uniformArray(prod(aShape)));
      const b = toF32(rng.uniformArray(prod(bShape)));
      const dy = toF32(rng.uniformArray(prod(aShape)));
      const [ta, tb, tdy] = [up(a, aShape), up(b, bShape), up(dy, aShape)];
      const bi = (i: number) => bIndex(i, aShape, bShape);
      const mulF = (av: Float64Array, bv: Float64Array) => Float64Array.from(av, (v, i) => v * bv[bi(i)]!);
      const addF = (av: Float64Array, bv: Float64Array) => Float64Array.from(av, (v, i) => v + bv[bi(i)]!);
      // analytic references
      const daRef = Float64Array.from(dy, (g, i) => g * b[bi(i)]!);
      const dbRef = new Float64Array(b.length);
      const dbAddRef = new Float64Array(b.length);
      a.forEach((v, i) => {
        dbRef[bi(i)] += dy[i]! * v;
        dbAddRef[bi(i)] += dy[i]!;
      });
      const { da, db } = mulBackward(ta, tb, tdy);
      expect(db.shape).toEqual(bShape);
      const [gda, gdb] = [await da.readF32(), await db.readF32()];
      // da: one product; db: up to 301 f32 products summed, 1e-5 relative to max
      expectClose(gda, daRef, { rtol: 4e-7, seed, what: 'mul da' });
      expectClose(gdb, dbRef, { rtol: 1e-5, relativeToMax: true, seed, what: 'mul db' });
      if (a.length <= 64) {
        expectClose(
          gda,
          fdGrad((v) => mulF(v, b), a, dy),
          { rtol: 1e-6, relativeToMax: true, seed, what: 'mul da fd' },
        );
        expectClose(
          gdb,
          fdGrad((v) => mulF(a, v), b, dy),
          { rtol: 1e-6, relativeToMax: true, seed, what: 'mul db fd' },
        );
      }
      const add = addBackward(tdy, bShape);
      expect(add.da).toBe(tdy);
      const gadd = await add.db.readF32();
      expectClose(gadd, dbAddRef, { rtol: 1e-5, relativeToMax: true, seed, what: 'add db' });
      if (a.length <= 64)
        expectClose(
          gadd,
          fdGrad((v) => addF(a, v), b, dy),
          { rtol: 1e-6, relativeToMax: true, seed, what: 'add db fd' },
        );
      dispose(ta, tb, tdy, da, db, add.db);
    });
  }

  it('sumToShape of a same-shape target is a copy', async () => {
    const t = up([1, 2, 3, 4, 5, 6], [2, 3]);
    const s = sumToShape(t, [2, 3]);
    expect(Array.from(await s.readF32())).toEqual([1, 2, 3, 4, 5, 6]);
    dispose(t, s);
  });
});

describe('axpy, copy, cast', () => {
  it('y = alpha x + beta y in place; beta = 0 never reads y', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const n = 517;
    const x = toF32(rng.uniformArray(n));
    const y0 = toF32(rng.uniformArray(n));
    const tx = up(x, [n]);
    const ty = up(y0, [n]);
    const alpha = Math.fround(rng.uniform(-2, 2));
    const beta = Math.fround(rng.uniform(-2, 2));
    axpy(tx, ty, alpha, beta);
    axpy(tx, ty); // += x
    const ref = Float64Array.from(x, (v, i) => alpha * v + beta * y0[i]! + v);
    // two fused steps of 2-3 f32 roundings each
    expectClose(await ty.readF32(), ref, { rtol: 1e-6, relativeToMax: true, seed, what: 'axpy' });
    const fresh = rt.empty([n]); // NaN-poisoned in tests
    axpy(tx, fresh, alpha, 0);
    expectClose(
      await fresh.readF32(),
      Float64Array.from(x, (v) => alpha * v),
      { rtol: 2e-7, seed, what: 'axpy beta=0' },
    );
    dispose(tx, ty, fresh);
  });

  it('copy duplicates any dtype', async () => {
    const t = rt.upload(Int32Array.from([1, -2, 3, 7, 1 << 30]), [5], 'i32');
    const c = copy(t);
    t.dispose();
    expect(Array.from(await c.read())).toEqual([1, -2, 3, 7, 1 << 30]);
    c.dispose();
  });

  it('casts f32 <-> f16 with round-to-nearest-even', async (ctx) => {
    skipWithoutF16(rt, ctx);
    const seed = freshSeed();
    const rng = new Rng(seed);
    const n = 301;
    // magnitudes across the f16 normal range and a few subnormals
    const x = Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1) * 2 ** rng.uniform(-20, 15));
    const t = up(x, [n]);
    const h = cast(t, 'f16');
    expect(h.dtype).toBe('f16');
    const expected = Array.from(x, (v) => f16BitsToF32(f32ToF16Bits(v)));
    // exact: a correctly rounded conversion; allow nothing else (shows up as a mismatch index)
    expectClose(await h.read(), expected, { rtol: 0, seed, what: 'f32 -> f16' });
    const back = cast(h, 'f32');
    expect(back.dtype).toBe('f32');
    expectClose(await back.readF32(), expected, { rtol: 0, seed, what: 'f16 -> f32' });
    // arithmetic on f16 storage computes in f32 and rounds once on store
    // (inputs below 2^7 so squares stay in f16 range: WGSL leaves out-of-range f32->f16 undefined)
    const small = rt.upload(
      Float32Array.from(expected, (v) => (Math.abs(v) < 128 ? v : 1)),
      [n],
      'f16',
    );
    const sq = unary('square', small);
    const smallRef = Array.from(expected, (v) => (Math.abs(v) < 128 ? v : 1));
    expectClose(
      await sq.read(),
      smallRef.map((v) => f16BitsToF32(f32ToF16Bits(Math.fround(v * v)))),
      { rtol: 0, seed, what: 'f16 square' },
    );
    dispose(t, h, back, sq, small);
  });
});
