/**
 * The benchmark harness's checks (bench/harness.ts): a wrong output is caught and not timed,
 * NaN never passes, the sampled matmul check finds a wrong entry, and timings carry the median
 * and the spread of their samples.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { matmul } from '../../src/kernels/matmul.ts';
import { checkMatmulSampled, combineOutcomes, compareOutput, spread, summarize, timeCase, timingCells } from '../../bench/harness.ts';
import { testRuntime } from '../reference/gpu.ts';
import { matmulRef } from '../reference/matmul-ref.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

describe('bench harness', () => {
  it('compareOutput: within rtol of the largest |expected|; NaN, Inf, empty and length mismatches fail', () => {
    expect(compareOutput([1, 2.00001], [1, 2], 1e-5).ok).toBe(true);
    expect(compareOutput([1, 2.0001], [1, 2], 1e-5).ok).toBe(false);
    expect(compareOutput([NaN, 2], [NaN, 2], 1).ok).toBe(false);
    expect(compareOutput([1, 2], [1, Infinity], 1).ok).toBe(false);
    expect(compareOutput([1], [1, 2], 1).ok).toBe(false);
    expect(compareOutput([], [], 1).ok).toBe(false);
    expect(compareOutput([3, 5], [3, 5], 0).ok).toBe(true); // rtol 0: exact (indices)
    expect(compareOutput([3, 4], [3, 5], 0).text).toMatch(/^WRONG: \[1\] = 4 vs 5/);
    expect(combineOutcomes(compareOutput([1], [1], 0), compareOutput([2], [1], 0)).ok).toBe(false);
  });

  it('checkMatmulSampled finds one wrong entry of a product and passes the float64 product rounded to f32', () => {
    const [M, N, K] = [37, 29, 50];
    const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i));
    const c = Float32Array.from(matmulRef(a, b, M, N, K, false, true));
    expect(checkMatmulSampled(a, b, c, { M, N, K, transB: true }, M * N * 4).ok).toBe(true);
    c[5 * N + 7]! += 1e-3;
    // 4 samples per entry on average: the wrong one is drawn.
    const r = checkMatmulSampled(a, b, c, { M, N, K, transB: true }, M * N * 4);
    expect(r.ok).toBe(false);
    expect(r.text).toMatch(/C\[5,7\]/);
    c[5 * N + 7] = NaN;
    expect(checkMatmulSampled(a, b, c, { M, N, K, transB: true }, M * N * 4).worst).toBe(Infinity);
  });

  it('timeCase does not time a case whose output is wrong, and checks a key once', async () => {
    const [M, N, K] = [8, 12, 16];
    const A = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3);
    const B = Float32Array.from({ length: K * N }, (_, i) => (i % 5) - 2);
    const [a, b] = [rt.upload(A, [M, K]), rt.upload(B, [K, N])];
    const out = rt.empty([M, N]);
    let records = 0;
    let checks = 0;
    // A "kernel" that gets the layout wrong: A·Bᵀ-style reading of a [K, N] B.
    const wrong = await timeCase(rt, {
      key: 'harness test: wrong layout',
      record: () => void records++,
      check: async () => {
        checks++;
        matmul(a, b, { out });
        const got = await out.readF32();
        return checkMatmulSampled(
          A,
          B,
          got.map((v, i) => (i === 3 ? v + 1 : v)),
          { M, N, K },
          M * N * 4,
        );
      },
    });
    expect(wrong.timing).toBeNull();
    expect(wrong.check.ok).toBe(false);
    expect(records).toBe(0);
    const again = await timeCase(rt, { key: 'harness test: wrong layout', record: () => void records++, check: async () => (checks++, wrong.check) });
    expect([again.timing, checks, records]).toEqual([null, 1, 0]);

    const right = await timeCase(
      rt,
      {
        key: 'harness test: matmul',
        record: () => void matmul(a, b, { out }),
        check: async () => {
          matmul(a, b, { out });
          return checkMatmulSampled(A, B, await out.readF32(), { M, N, K }, 64);
        },
      },
      { samples: 3, sampleMs: 5, maxIters: 4 },
    );
    expect(right.check.ok).toBe(true);
    expect(right.timing!.samples).toBe(3);
    expect(right.timing!.samplesMs).toHaveLength(3);
    for (const t of [a, b, out]) t.dispose();
  });

  it('summarize: median (mean of the middle two for an even count), min and max; the cells show the spread', () => {
    const t = summarize([5, 1, 3, 9], 10);
    expect([t.medianMs, t.bestMs, t.maxMs, t.iters, t.samples]).toEqual([4, 1, 9, 10, 4]);
    expect(summarize([2, 7, 4], 1).medianMs).toBe(4);
    expect(spread(t)).toBe('1–9');
    expect(timingCells(t)).toEqual({ 'median ms': 4, 'min–max ms': '1–9' });
    expect(timingCells(null)).toEqual({ 'median ms': null, 'min–max ms': null });
    expect(() => summarize([], 1)).toThrow(/no samples/);
  });
});
