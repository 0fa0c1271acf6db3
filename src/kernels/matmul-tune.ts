/**
 * Autotune of the GPU family's tiled matmul: for each shape class a run needs, time the tiled
 * variants (matmul-config.ts TILED_VARIANTS) on this device once, outside any training step, and
 * keep the fastest; results are cached on disk by adapter, so later runs start tuned. The CPU
 * family is not tuned: its register-blocked configuration was chosen from measured variants
 * (bench/results/matmul-variants.md).
 */
import { z } from 'zod';
import type { DawnRuntime } from './runtime.ts';
import type { FloatDType } from './tensor.ts';
import { matmul } from './matmul.ts';
import { TILED_VARIANTS, adapterKey, forceMatmul, setTuned, shapeClass, tunedFor, type MatmulProblem, type TiledConfig } from './matmul-config.ts';
import { tiledProblem } from './matmul-tiled.ts';

const TiledSchema = z.object({
  kind: z.literal('tiled'),
  tx: z.number(),
  ty: z.number(),
  rm: z.number(),
  rn: z.number(),
  bk: z.number(),
  prefetch: z.boolean(),
  unrollK: z.boolean().optional(),
});
const CacheSchema = z.record(z.string(), z.record(z.string(), z.object({ config: TiledSchema, ms: z.record(z.string(), z.number()) })));
type Cache = z.infer<typeof CacheSchema>;

/** Where tuned choices are kept between runs: whole cache in, whole cache out. */
export interface TuningStore {
  /** The cache as stored (anything: it is checked here), or undefined when there is none. */
  load(): unknown;
  save(cache: Cache): void;
  /** Where it is, for messages. */
  where: string;
}

function readCache(store: TuningStore): Cache {
  try {
    const r = CacheSchema.safeParse(store.load());
    return r.success ? r.data : {};
  } catch {
    return {}; // no cache yet, or unreadable: tune again
  }
}

/** Load this adapter's cached choices into the kernel choice; returns how many. */
export function loadTuning(rt: DawnRuntime, store: TuningStore): number {
  const mine = readCache(store)[adapterKey(rt.caps)] ?? {};
  for (const [cls, e] of Object.entries(mine)) setTuned(rt.caps, cls, e.config);
  return Object.keys(mine).length;
}

export interface TuneResult {
  shapeClass: string;
  best: string;
  ms: Record<string, number>;
}

/** Median ms of `iters` recorded products per sample (one submit and wait per sample). */
async function timeOne(rt: DawnRuntime, record: () => void, samples: number): Promise<number> {
  record();
  await rt.sync();
  let t0 = performance.now();
  record();
  await rt.sync();
  const iters = Math.max(1, Math.min(200, Math.round(20 / Math.max(performance.now() - t0, 1e-3))));
  const per: number[] = [];
  for (let s = 0; s < samples; s++) {
    t0 = performance.now();
    for (let i = 0; i < iters; i++) record();
    await rt.sync();
    per.push((performance.now() - t0) / iters);
  }
  return per.sort((a, b) => a - b)[Math.floor(per.length / 2)]!;
}

/**
 * Tune the problems not tuned yet (one per shape class): each variant that fits the device is
 * timed as a plain product of the problem's size and storage types; the fastest is used from then
 * on and written to the store.
 */
export async function tuneMatmuls(
  rt: DawnRuntime,
  problems: readonly MatmulProblem[],
  store: TuningStore,
  opts: { samples?: number; variants?: Record<string, TiledConfig> } = {},
): Promise<TuneResult[]> {
  const limits = rt.policy.limits;
  const variants = Object.entries(opts.variants ?? TILED_VARIANTS).filter(
    ([, c]) => tiledProblem(c, Math.min(256, limits.maxComputeInvocationsPerWorkgroup), limits.maxComputeWorkgroupStorageSize) === null,
  );
  const results: TuneResult[] = [];
  for (const p of problems) {
    if (tunedFor(rt.caps, p)) continue;
    const [ta, tb, tc] = p.types.split(',') as [FloatDType, FloatDType, FloatDType];
    const a = rt.zeros(p.transA ? [p.K, p.M] : [p.M, p.K], ta, 'tune A');
    const b = rt.zeros(p.transB ? [p.N, p.K] : [p.K, p.N], tb, 'tune B');
    rt.fill(a, 0.5);
    rt.fill(b, -0.25);
    const c = rt.empty([p.M, p.N], tc, 'tune C');
    const ms: Record<string, number> = {};
    // Each variant is forced through the policy (whatever the family), as tests force one.
    for (const [name, cfg] of variants)
      ms[name] = await timeOne(
        rt,
        () => rt.withPolicy(forceMatmul(cfg), () => void matmul(a, b, { transA: p.transA, transB: p.transB, out: c })),
        opts.samples ?? 3,
      );
    for (const t of [a, b, c]) t.dispose();
    const best = Object.entries(ms).sort((x, y) => x[1] - y[1])[0]![0];
    setTuned(rt.caps, shapeClass(p), (opts.variants ?? TILED_VARIANTS)[best]!);
    results.push({ shapeClass: shapeClass(p), best, ms });
  }
  if (results.length) {
    const cache = readCache(store);
    const mine = (cache[adapterKey(rt.caps)] ??= {});
    for (const r of results) mine[r.shapeClass] = { config: (opts.variants ?? TILED_VARIANTS)[r.best]!, ms: r.ms };
    store.save(cache);
  }
  return results;
}
