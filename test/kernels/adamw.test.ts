import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import { adamw, clipCoefficient, CLIP } from '../../src/kernels/adamw.ts';
import { sumSquaresMany } from '../../src/kernels/reduce.ts';
import { finiteStatsMany, totalNonFinite } from '../../src/kernels/guard.ts';
import { testRuntime } from '../reference/gpu.ts';
import { toF32, seeded } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { adamwRef, type RefState } from '../reference/adamw-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const dispose = (...ts: Tensor[]) => ts.forEach((t) => t.dispose());

describe('AdamW', () => {
  it('matches float64 PyTorch AdamW over 6 steps, with GPU global-norm clipping over 3 params', async () => {
    const { seed, rng } = seeded();
    const sizes = [7, 300, 1029];
    const [lr, wd, b1, b2, eps, maxNorm] = [1e-2, 0.1, 0.9, 0.95, 1e-8, 4.0];
    const ref: RefState[] = sizes.map((n) => ({ p: toF32(rng.normalArray(n)), m: new Float64Array(n), v: new Float64Array(n) }));
    const P = ref.map((r) => rt.upload(Float32Array.from(r.p), [r.p.length]));
    const M = sizes.map((n) => rt.zeros([n]));
    const V = sizes.map((n) => rt.zeros([n]));
    const G = sizes.map((n) => rt.empty([n]));
    let clipped = 0;
    for (let t = 1; t <= 6; t++) {
      // Global grad norm ~ sqrt(1336) * s: s in [0.02, 0.3] gives norms around 0.7..11, so some steps clip.
      const s = rng.uniform(0.02, 0.3);
      const grads = sizes.map((n) => toF32(rng.normalArray(n, s)));
      grads.forEach((gh, k) => rt.write(G[k]!, Float32Array.from(gh)));
      const sumSq = sumSquaresMany(G);
      const cc = clipCoefficient(sumSq, maxNorm);
      for (let k = 0; k < sizes.length; k++)
        adamw(P[k]!, G[k]!, M[k]!, V[k]!, { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step: t }, { clip: cc, clipIndex: CLIP.coef });
      const norm = Math.sqrt(grads.reduce((a, gh) => a + gh.reduce((b, x) => b + x * x, 0), 0));
      const coef = Math.min(1, maxNorm / (norm + 1e-6));
      if (coef < 1) clipped++;
      // norm: tree sum of squares then sqrt, 1e-6 relative. coef inherits that relative error and
      // 1 - coef the same absolute error, so both are checked relative to max(coef, 1 - coef) >= 0.5.
      const got = await cc.readF32();
      expectClose([got[0]!], [norm], { rtol: 1e-6, seed, what: `norm step ${t}` });
      expectClose(got.subarray(1), [coef, 1 - coef, 0, coef], { rtol: 2e-6, relativeToMax: true, seed, what: `clip coefficient step ${t}` });
      ref.forEach((r, k) => adamwRef(r, grads[k]!, coef, lr, wd, b1, b2, eps, t));
      dispose(sumSq, cc);
    }
    expect(clipped, `seed ${seed}: the test should exercise clipping`).toBeGreaterThan(0);
    for (let k = 0; k < sizes.length; k++) {
      // f32 state: each step adds a few roundings (~6e-8 relative) to m and v, and the f32 clip
      // coefficient carries ~1e-7; over 6 steps m, v stay within 2e-6 relative (v per element:
      // it is a sum of positive terms; m relative to its max since it can cancel to ~0).
      expectClose(await M[k]!.readF32(), ref[k]!.m, { rtol: 2e-6, relativeToMax: true, seed, what: `m[${k}]` });
      expectClose(await V[k]!.readF32(), ref[k]!.v, { rtol: 2e-6, seed, what: `v[${k}]` });
      // p ~ N(0,1), updates ~ lr: absolute error ~ 6 steps * ulp(1) = 4e-7 relative to max|p|
      expectClose(await P[k]!.readF32(), ref[k]!.p, { rtol: 1e-6, relativeToMax: true, seed, what: `p[${k}]` });
    }
    dispose(...P, ...M, ...V, ...G);
  });

  it('without clip / skip buffers it is plain AdamW (default betas)', async () => {
    const { seed, rng } = seeded();
    const n = 257;
    const r: RefState = { p: toF32(rng.normalArray(n)), m: toF32(rng.normalArray(n, 0.1)), v: toF32(rng.uniformArray(n, 0, 0.01)) };
    const [p, m, v] = [r.p, r.m, r.v].map((a) => rt.upload(Float32Array.from(a), [n]));
    const gh = toF32(rng.normalArray(n));
    const g = rt.upload(Float32Array.from(gh), [n]);
    adamw(p!, g, m!, v!, { lr: 3e-3, step: 3 });
    adamwRef(r, gh, 1, 3e-3, 0.01, 0.9, 0.999, 1e-8, 3);
    // one step: a few f32 roundings
    expectClose(await p!.readF32(), r.p, { rtol: 3e-7, relativeToMax: true, seed, what: 'p' });
    expectClose(await m!.readF32(), r.m, { rtol: 3e-7, relativeToMax: true, seed, what: 'm' });
    expectClose(await v!.readF32(), r.v, { rtol: 3e-7, seed, what: 'v' });
    dispose(p!, m!, v!, g);
  });

  it('a nonzero skip flag (f32, u32, NaN, or the clip non-finite flag) leaves p, m, v bit-identical', async () => {
    const { seed, rng } = seeded();
    const n = 300;
    const init = [rng.normalArray(n), rng.normalArray(n, 0.1), rng.uniformArray(n, 0, 0.01)].map((a) => Float32Array.from(a));
    const [p, m, v] = init.map((a) => rt.upload(a, [n]));
    const gh = Float32Array.from(rng.normalArray(n));
    gh[17] = Infinity; // a bad gradient: the guard and the clip norm both see it
    const g = rt.upload(gh, [n]);
    const stats = finiteStatsMany([g]);
    const total = totalNonFinite(stats);
    const cc = clipCoefficient(sumSquaresMany([g]), 1.0);
    const flags: [string, Tensor, number][] = [
      ['f32 1', rt.upload([1], [1]), 0],
      ['u32 5', rt.upload([0, 5], [2], 'u32'), 1],
      ['f32 NaN', rt.upload([NaN], [1]), 0],
      ['guard total', total, 0],
      ['clip nonFinite', cc, CLIP.nonFinite],
    ];
    for (const [what, flag, skipIndex] of flags) {
      adamw(p!, g, m!, v!, { lr: 1e-2, weightDecay: 0.1, step: 1 }, { clip: cc, clipIndex: CLIP.coef, skip: flag, skipIndex });
      const after = await Promise.all([p!, m!, v!].map((t) => t.readF32()));
      after.forEach((a, k) => expect(Array.from(a), `${what}: tensor ${k} changed`).toEqual(Array.from(init[k]!)));
    }
    expect(Array.from(await cc.readF32())).toEqual([Infinity, 0, 1, 1, 0]);
    // A zero flag (f32 0 and -0, u32 0) lets the step through.
    for (const [what, flag] of [
      ['f32 -0', rt.upload([-0], [1])],
      ['u32 0', rt.upload([0], [1], 'u32')],
    ] as [string, Tensor][]) {
      const p2 = rt.upload(init[0]!, [n]);
      const m2 = rt.zeros([n]);
      const v2 = rt.zeros([n]);
      const g2 = rt.upload(Float32Array.from(rng.normalArray(n)), [n]);
      adamw(p2, g2, m2, v2, { lr: 1e-2, step: 1 }, { skip: flag });
      const a = await p2.readF32();
      // Adam's first step moves every weight by ~lr
      let moved = 0;
      for (let i = 0; i < n; i++) if (Math.abs(a[i]! - init[0]![i]!) > 1e-3) moved++;
      expect(moved, what).toBe(n);
      dispose(p2, m2, v2, g2, flag);
    }
    dispose(p!, m!, v!, g, stats, cc, ...flags.map((f) => f[1]).filter((t) => t !== cc));
  });

  it('clipCoefficient: no clipping below maxNorm, NaN norm flagged', async () => {
    const a = rt.upload([9], [1]); // norm 3
    const c1 = clipCoefficient(a, 5);
    expectClose(await c1.readF32(), [3, 1, 0, 0, 1], { rtol: 0, what: 'below maxNorm' });
    const c2 = clipCoefficient(a, 1.5);
    expectClose(await c2.readF32(), [3, 1.5 / (3 + 1e-6), 1 - 1.5 / (3 + 1e-6), 0, 1.5 / (3 + 1e-6)], { rtol: 1e-6, what: 'clipped' }); // f32 division
    const b = rt.upload([NaN], [1]);
    const c3 = await clipCoefficient(b, 1).readF32();
    expect([Number.isNaN(c3[0]), Number.isNaN(c3[1]), c3[3]]).toEqual([true, true, 1]);
    dispose(a, b, c1, c2);
  });

  it('loss-scaled gradients: the norm and clip are of the unscaled gradients, AdamW applies coef / scale', async () => {
    const { seed, rng } = seeded();
    const n = 523;
    const scale = 2 ** 14; // a power of two: scaling is exact in f32
    const g = toF32(rng.normalArray(n, 0.5)); // norm ~ 11: clips at maxNorm 2
    const p0 = toF32(rng.normalArray(n));
    const maxNorm = 2;
    const runs = await Promise.all(
      [1, scale].map(async (s) => {
        const G = rt.upload(
          Float32Array.from(g, (x) => x * s),
          [n],
        );
        const P = rt.upload(Float32Array.from(p0), [n]);
        const [M, V] = [rt.zeros([n]), rt.zeros([n])];
        const sumSq = sumSquaresMany([G]);
        const cc = clipCoefficient(sumSq, maxNorm, 1 / s);
        adamw(P, G, M, V, { lr: 1e-2, weightDecay: 0.1, step: 1 }, { clip: cc, clipIndex: CLIP.gradScale });
        const out = { clip: await cc.readF32(), p: await P.readF32(), m: await M.readF32() };
        dispose(G, P, M, V, sumSq, cc);
        return out;
      }),
    );
    const norm = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    const [plain, scaled] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expectClose([scaled.clip[0]!, scaled.clip[1]!, scaled.clip[4]! * scale], [norm, coef, coef], { rtol: 2e-6, seed, what: 'scaled norm, coef, gradScale' });
    expect(scaled.clip[3]).toBe(0);
    // Same update whether or not the gradients carried the (power-of-two) scale: only the f32
    // rounding of sqrt(sum of squares) of a 2^28-larger sum differs (~1e-7 relative).
    expectClose(scaled.m, plain.m, { rtol: 1e-6, relativeToMax: true, seed, what: 'm' });
    expectClose(scaled.p, plain.p, { rtol: 1e-6, relativeToMax: true, seed, what: 'p' });
  });
});
