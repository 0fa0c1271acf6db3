/**
 * The tiled matmul's autotune (GPU family): every variant is timed per shape class, the fastest
 * is chosen from then on, and the choice round-trips through the disk cache. Correctness of the
 * tuned kernel is checked against float64 (the tiled kernel's own tests are in matmul.test.ts).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { matmul } from '../../src/kernels/matmul.ts';
import { chooseMatmulKernel, type MatmulProblem, type TiledConfig } from '../../src/kernels/matmul-config.ts';
import { derivePolicy } from '../../src/kernels/policy.ts';
import { loadTuning, tuneMatmuls } from '../../src/kernels/matmul-tune.ts';
import { fileTuningStore } from '../../src/kernels/node/tuning-cache.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

// Two small variants keep lavapipe's compile time down; the engine tunes TILED_VARIANTS.
const VARIANTS: Record<string, TiledConfig> = {
  small: { kind: 'tiled', tx: 4, ty: 4, rm: 2, rn: 2, bk: 4, prefetch: false },
  wide: { kind: 'tiled', tx: 8, ty: 2, rm: 1, rn: 3, bk: 8, prefetch: true },
};

describe('matmul autotune', () => {
  it('times every variant, picks the fastest, caches it on disk and loads it back', async () => {
    const gpuCaps = { ...rt.caps, family: 'gpu' as const };
    const view = Object.create(rt, { caps: { value: gpuCaps } }) as DawnRuntime;
    // The GPU family's policy: the tiled kernel, tuned where measured (the tune itself forces each variant).
    const gpu = { caps: gpuCaps, policy: derivePolicy(gpuCaps) };
    const p: MatmulProblem = { M: 45, N: 19, K: 33, transA: false, transB: true, mode: 'plain', types: 'f32,f32,f32' };
    const path = join(mkdtempSync(join(tmpdir(), 'wmoe-tune-')), 'tuning.json');
    const [r] = await tuneMatmuls(view, [p], fileTuningStore(path), { variants: VARIANTS, samples: 2 });
    expect(Object.keys(r!.ms).sort()).toEqual(['small', 'wide']);
    for (const ms of Object.values(r!.ms)) expect(ms).toBeGreaterThan(0);
    const fastest = Object.entries(r!.ms).sort((a, b) => a[1] - b[1])[0]![0];
    expect(r!.best).toBe(fastest);
    expect(chooseMatmulKernel(gpu, p)).toEqual({ kind: 'tiled', cfg: VARIANTS[fastest] });
    // A second tune of the same class is a no-op; a fresh caps object reads the cache.
    expect(await tuneMatmuls(view, [p], fileTuningStore(path), { variants: VARIANTS })).toEqual([]);
    const cache = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Record<string, { config: TiledConfig }>>;
    expect(Object.values(Object.values(cache)[0]!)[0]!.config).toEqual(VARIANTS[fastest]);
    const fresh = Object.create(rt, { caps: { value: { ...gpuCaps } } }) as DawnRuntime;
    expect(loadTuning(fresh, fileTuningStore(path))).toBe(1);
    expect(chooseMatmulKernel({ caps: fresh.caps, policy: derivePolicy(fresh.caps) }, p)).toEqual({ kind: 'tiled', cfg: VARIANTS[fastest] });
    // The tuned kernel computes the product (float64 reference, K = 33 f32 terms: rtol 1e-5).
    const seed = freshSeed();
    const rng = new Rng(seed);
    const a = Float32Array.from({ length: p.M * p.K }, () => rng.uniform());
    const b = Float32Array.from({ length: p.N * p.K }, () => rng.uniform());
    const ref = new Float64Array(p.M * p.N);
    for (let i = 0; i < p.M; i++) for (let j = 0; j < p.N; j++) for (let k = 0; k < p.K; k++) ref[i * p.N + j]! += a[i * p.K + k]! * b[j * p.K + k]!;
    const out = view.withPolicy({ family: 'gpu' }, () => matmul(view.upload(a, [p.M, p.K]), view.upload(b, [p.N, p.K]), { transB: true }));
    expectClose(await out.readF32(), ref, { rtol: 1e-5, relativeToMax: true, seed, what: 'tuned tiled matmul' });
  });
});
