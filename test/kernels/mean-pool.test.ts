/**
 * Mean pooling over the sequence axis (src/kernels/mean-pool.ts, shaders/mean-pool.wgsl): the
 * forward (a scaled axis sum) and its backward against float64 (test/reference/mean-pool-ref.ts),
 * outputs NaN-poisoned by the test runtime, shapes that are not multiples of the workgroup, and a
 * finite-difference check of the backward.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { meanPool, meanPoolBackward } from '../../src/kernels/mean-pool.ts';
import { testRuntime } from '../reference/gpu.ts';
import { toF32, seeded } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { projectedNumericGrad } from '../reference/ops.ts';
import { meanPoolBackwardRef, meanPoolRef } from '../reference/mean-pool-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

// [outer, n, inner]: 1s, 7, 33 and 130 on every axis position, a pooled axis past one workgroup.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [2, 7, 33],
  [3, 130, 7],
  [1, 33, 130],
  [7, 1, 17],
  [5, 300, 3],
];

describe('mean pooling', () => {
  for (const [outer, n, inner] of SHAPES) {
    it(`forward and backward match float64, [${outer}, ${n}, ${inner}]`, async () => {
      const { seed, rng } = seeded();
      const x = toF32(rng.uniformArray(outer * n * inner, -1, 1));
      const dy = toF32(rng.uniformArray(outer * inner, -1, 1));
      const tx = rt.upload(Float32Array.from(x), [outer * n, inner]);
      const tdy = rt.upload(Float32Array.from(dy), [outer, inner]);
      const y = meanPool(tx, outer, n, inner);
      const dx = meanPoolBackward(tdy, outer, n, inner);
      expect(y.shape).toEqual([outer, inner]);
      expect(dx.shape).toEqual([outer * n, inner]);
      // f32 sums of n <= 300 values in [-1, 1], then the scale: the summation error is at most
      // n·2^-24·max|x| = 1.8e-5 absolute (the mean is small: an absolute bound, atol 1 makes rtol absolute).
      expectClose(await y.readF32(), meanPoolRef(x, outer, n, inner), { rtol: 2e-5, atol: 1, seed, what: 'mean' });
      // dy · f32(1/n): two roundings, at most 2^-23 ≈ 1.2e-7 relative.
      expectClose(await dx.readF32(), meanPoolBackwardRef(dy, outer, n, inner), { rtol: 2.5e-7, seed, what: 'dx' });
      for (const t of [tx, tdy, y, dx]) t.dispose();
    });
  }

  it('backward agrees with central finite differences of the float64 forward ([2, 3, 5])', async () => {
    const { seed, rng } = seeded();
    const [outer, n, inner] = [2, 3, 5];
    const x = toF32(rng.uniformArray(outer * n * inner, -1, 1));
    const dy = toF32(rng.uniformArray(outer * inner, -1, 1));
    const fd = projectedNumericGrad((v) => meanPoolRef(v, outer, n, inner), x, dy);
    const tdy = rt.upload(Float32Array.from(dy), [outer, inner]);
    const dx = meanPoolBackward(tdy, outer, n, inner);
    // float64 central differences of a linear map are exact to ~1e-10; the GPU side is f32.
    expectClose(await dx.readF32(), fd, { rtol: 1e-6, atol: 1e-3, seed, what: 'dx vs finite differences' });
    tdy.dispose();
    dx.dispose();
  });

  it('rejects a dy that is not [outer, inner]', () => {
    const t = rt.upload(new Float32Array(6), [2, 3]);
    expect(() => meanPoolBackward(t, 2, 4, 4)).toThrow(/is not \[2, 4\]/);
    t.dispose();
  });
});
