/**
 * Non-finite guard: per-tensor statistics cheap enough for every layer, every step.
 * finiteStatsMany(tensors) -> [T, 4] f32 rows (nonFiniteCount, min, max, mean of finite values)
 * in ceil(T / 14) + 1 dispatches, no readback. When a tensor has no finite value (all NaN/Inf,
 * or it is empty), min, max and mean are NaN; the count is exact up to 2^24 (stored as f32).
 * The mean is sum/count in f32, so finite values near FLT_MAX can overflow it to +-Inf.
 */
import type { Tensor } from './tensor.ts';
import { grid1d } from './grid.ts';
import { manyBatch, manyBindings, manyDecls, manyUniforms, planMany, MANY_CHUNK } from './reduce.ts';

const NAN_BITS = 0x7fc00000;

function caseLoop(k: number): string {
  return (
    `    case ${k}u: { for (var e = e0 + lidx; e < e1; e += WG) { let v = f32(in${k}[e]);` +
    ` if (is_finite(v)) { mn = min(mn, v); mx = max(mx, v); sum += v; } else { bad += 1u; } } }`
  );
}

/** Statistics of many tensors, one row each: [T, 4] = (nonFinite, min, max, mean). */
export function finiteStatsMany(tensors: readonly Tensor[], outShape?: readonly number[]): Tensor {
  if (tensors.length === 0) throw new Error('finiteStatsMany: no tensors');
  const rt = tensors[0]!.rt;
  for (const t of tensors) {
    if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`finiteStatsMany: ${t} is not a float tensor`);
  }
  // parts and spans take bindings 0 and 1; the tensors follow.
  const plan = planMany(
    tensors.map((t) => t.size),
    manyBatch(rt, 2),
    MANY_CHUNK,
  );
  const parts = rt.empty([plan.partials, 4], 'f32', 'guard partials');
  const spans = rt.empty([tensors.length, 4], 'u32', 'guard spans');
  for (const g of plan.groups) {
    const ts = tensors.slice(g.start, g.start + g.count);
    const kernel = rt.kernel({
      shader: 'guard',
      entry: 'partial',
      params: {
        ENABLE: ts.some((t) => t.dtype === 'f16') ? 'enable f16;' : '',
        MANY_DECLS: manyDecls(ts, 2),
        MANY_CASES: ts.map((_, k) => caseLoop(k)).join('\n'),
      },
    });
    rt.dispatch(kernel, { parts, spans, ...manyBindings(ts) }, grid1d(rt, g.total), manyUniforms(g, ts, { tBase: g.start }));
  }
  const stats = rt.empty(outShape ?? [tensors.length, 4], 'f32', 'finite stats');
  const fin = rt.kernel({ shader: 'guard', entry: 'finalize', params: { ENABLE: '', MANY_DECLS: '', MANY_CASES: '' } });
  rt.dispatch(fin, { parts, spans, stats }, grid1d(rt, tensors.length), { tensors: tensors.length, nanBits: NAN_BITS });
  parts.dispose();
  spans.dispose();
  return stats;
}

/** Statistics of one tensor: [4] = (nonFinite count, min, max, mean of the finite values). */
export function finiteStats(t: Tensor): Tensor {
  return finiteStatsMany([t], [4]);
}

/**
 * Total non-finite count over the rows of a finiteStatsMany result: an f32 [1] tensor, nonzero
 * when any tensor had a NaN/Inf. Pass it as AdamW's `skip` flag to drop the step without a readback.
 */
export function totalNonFinite(stats: Tensor): Tensor {
  if (stats.size % 4 !== 0 || stats.dtype !== 'f32') throw new Error(`totalNonFinite: ${stats} is not a [T, 4] f32 stats tensor`);
  const rt = stats.rt;
  const out = rt.empty([1], 'f32', 'non-finite total');
  const k = rt.kernel({ shader: 'guard', entry: 'total_bad', params: { ENABLE: '', MANY_DECLS: '', MANY_CASES: '' } });
  rt.dispatch(k, { stats_in: stats, flag: out }, [1], { tensors: stats.size / 4, nanBits: NAN_BITS });
  return out;
}
