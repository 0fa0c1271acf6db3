import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import { finiteStats, finiteStatsMany, totalNonFinite } from '../../src/kernels/guard.ts';
import { manyBatch } from '../../src/kernels/reduce.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { statsRef } from '../reference/guard-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

/** Count, min and max are exact; the mean is an f32 tree sum over <= 1e5 values: 1e-5 relative to max|x|. */
function expectStats(got: ArrayLike<number>, ref: number[], seed: number, what: string, scale: number): void {
  expect([got[0], got[1], got[2]].map(String), `${what} (seed ${seed})`).toEqual([ref[0], Math.fround(ref[1]!), Math.fround(ref[2]!)].map(String));
  if (Number.isNaN(ref[3]!)) expect(Number.isNaN(got[3]!), `${what} mean`).toBe(true);
  else expect(Math.abs(got[3]! - ref[3]!), `${what} mean (seed ${seed})`).toBeLessThanOrEqual(1e-5 * scale + 1e-7);
}

function inject(a: Float64Array, rng: Rng, count: number, values: number[]): void {
  for (let i = 0; i < count; i++) a[rng.int(a.length)] = values[rng.int(values.length)]!;
}

describe('finiteStats', () => {
  it('clean tensor of odd size: count 0, exact min / max, mean', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (const n of [1, 7, 4097, 20_001]) {
      const a = toF32(rng.uniformArray(n, -50, 30));
      const t = rt.upload(Float32Array.from(a), [n]);
      const s = finiteStats(t);
      expect(s.shape).toEqual([4]);
      expectStats(await s.readF32(), statsRef(a), seed, `n=${n}`, 50);
      t.dispose();
      s.dispose();
    }
  });

  it('counts injected NaN, +Inf and -Inf and ignores them in min / max / mean', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const n = 9_999;
    const a = toF32(rng.uniformArray(n, -1, 1));
    inject(a, rng, 37, [NaN, Infinity, -Infinity]);
    const t = rt.upload(Float32Array.from(a), [n]);
    const s = finiteStats(t);
    const got = await s.readF32();
    expect(got[0]).toBeGreaterThan(0);
    expectStats(got, statsRef(a), seed, 'injected', 1);
    t.dispose();
    s.dispose();
  });

  it('single non-finite kinds, all-NaN, all-non-finite, huge finite values', async () => {
    const cases: [string, number[]][] = [
      ['one NaN', [1, NaN, 3]],
      ['one +Inf', [Infinity, -2, 5]],
      ['one -Inf', [4, -Infinity]],
      ['all NaN', Array(300).fill(NaN)],
      ['all non-finite', Array.from({ length: 5000 }, (_, i) => [NaN, Infinity, -Infinity][i % 3]!)],
      ['FLT_MAX is finite', [3.4028234663852886e38, -3.4028234663852886e38]],
      ['subnormals and -0', [1e-45, -0, -1e-45]],
    ];
    for (const [what, values] of cases) {
      const t = rt.upload(values, [values.length]);
      const s = finiteStats(t);
      const got = await s.readF32();
      const ref = statsRef(Float32Array.from(values));
      if (what === 'FLT_MAX is finite') {
        expect([got[0], got[1], got[2]]).toEqual([0, -3.4028234663852886e38, 3.4028234663852886e38]);
      } else if (what === 'subnormals and -0') {
        // WGSL lets an implementation flush f32 subnormals to zero (SwiftShader does, lavapipe
        // does not): the exact stats, or those of the flushed values, and nothing else.
        const flushed = statsRef(Float32Array.from(values, (v) => (Math.abs(v) < 2 ** -126 ? 0 : v)));
        const key = (r: ArrayLike<number>) => [r[0], Math.fround(r[1]!), Math.fround(r[2]!), Math.fround(r[3]!)].map(String).join(' ');
        expect([key(ref), key(flushed)], what).toContain(key(got));
      } else expectStats(got, ref, 0, what, 1);
      t.dispose();
      s.dispose();
    }
  });
});

describe('finiteStatsMany', () => {
  it('matches per-tensor references for 33 tensors (3 partial dispatches + 1 final)', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const hosts: Float64Array[] = [];
    for (let k = 0; k < 33; k++) {
      const n = k === 5 ? 9000 : k === 9 ? 0 : 1 + rng.int(700);
      const a = toF32(rng.uniformArray(n, -10, 10));
      if (k % 4 === 1) inject(a, rng, 1 + rng.int(4), [NaN, Infinity, -Infinity]);
      if (k === 12) a.fill(NaN);
      hosts.push(a);
    }
    const ts = hosts.map((h) => rt.upload(Float32Array.from(h), [h.length]));
    const before = rt.recorder.dispatches;
    const s = finiteStatsMany(ts);
    // ceil(33 / batch) partial dispatches + finalize, plus 3 NaN-poison fills of new buffers (test
    // runtime only); batch = 14 with 16 storage buffers per stage, 10 with SwiftShader's 12, 6 with
    // WebGPU's default 8 (two bindings are not tensors).
    const batch = manyBatch(rt, 2);
    expect(batch).toBe(Math.min(14, rt.policy.limits.maxStorageBuffersPerShaderStage - 2));
    expect(rt.recorder.dispatches - before).toBe(Math.ceil(33 / batch) + 1 + 3);
    expect(s.shape).toEqual([33, 4]);
    const got = await s.readF32();
    hosts.forEach((h, k) => expectStats(got.subarray(4 * k, 4 * k + 4), statsRef(h), seed, `tensor ${k} (n=${h.length})`, 10));
    const total = totalNonFinite(s);
    expect((await total.readF32())[0]).toBe(hosts.reduce((acc, h) => acc + statsRef(h)[0]!, 0));
    [...ts, s, total].forEach((t: Tensor) => t.dispose());
  });

  it('total is 0 on clean tensors', async () => {
    const a = rt.upload([1, 2], [2]);
    const b = rt.upload([3], [1]);
    const s = finiteStatsMany([a, b]);
    const total = totalNonFinite(s);
    expect(Array.from(await total.readF32())).toEqual([0]);
    expectClose(await s.readF32(), [0, 1, 2, 1.5, 0, 3, 3, 3], { rtol: 0, what: 'stats' });
    [a, b, s, total].forEach((t) => t.dispose());
  });
});
