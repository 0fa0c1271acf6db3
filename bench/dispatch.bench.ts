/**
 * MoE routing plan: router + token permutation, the 4-dispatch path (routerTopK, then
 * buildDispatch's count / scan / place) against the fused 2-dispatch routeAndDispatch, at a
 * small-model micro-batch (N = 1024 tokens) and a large one (N = 16384), E = 8, k = 2.
 * Also the pieces alone, and the fused path over a few chunk sizes (how its heuristic was picked).
 */
import { getRuntime } from '../src/kernels/runtime.ts';
import type { Tensor } from '../src/kernels/tensor.ts';
import { routerTopK } from '../src/kernels/router.ts';
import { buildDispatch, chooseChunkTokens, disposeDispatch, routeAndDispatch, type DispatchPlan } from '../src/kernels/dispatch.ts';
import { round, timeGpu, type BenchRow, type SuiteContext, type SuiteResult } from './harness.ts';

function disposeAll(r: { probs: Tensor; idx: Tensor; weights: Tensor }, plan?: DispatchPlan): void {
  for (const t of [r.probs, r.idx, r.weights]) t.dispose();
  if (plan) disposeDispatch(plan);
}

export async function run(ctx: SuiteContext): Promise<SuiteResult[]> {
  const rt = await getRuntime({ announce: false });
  const opts = { sampleMs: ctx.quick ? 60 : 200, samples: ctx.quick ? 3 : 7 };
  const rows: BenchRow[] = [];
  const sweep: BenchRow[] = [];
  const E = 8;
  const k = 2;
  for (const N of ctx.quick ? [1024] : [1024, 16384]) {
    const logits = rt.upload(Float32Array.from({ length: N * E }, () => (Math.random() * 2 - 1) * 2), [N, E]);
    const idx = routerTopK(logits, { k }).idx;
    const dispatchesOf = (record: () => void) => {
      const d0 = rt.recorder.dispatches;
      record();
      return rt.recorder.dispatches - d0;
    };
    const cases: [string, () => void][] = [
      ['routerTopK + buildDispatch (old)', () => {
        const r = routerTopK(logits, { k });
        disposeAll(r, buildDispatch(r.idx, E));
      }],
      ['routeAndDispatch (fused)', () => {
        const r = routeAndDispatch(logits, { k });
        disposeAll(r, r.plan);
      }],
      ['routerTopK alone', () => disposeAll(routerTopK(logits, { k }))],
      ['buildDispatch alone', () => disposeDispatch(buildDispatch(idx, E))],
    ];
    const base: Record<string, number> = {};
    for (const [name, record] of cases) {
      const dispatches = dispatchesOf(record);
      await rt.sync();
      const tm = await timeGpu(rt, record, opts);
      base[name] = tm.bestMs;
      rows.push({ N, E, k, path: name, dispatches, 'best ms': round(tm.bestMs, 3), 'median ms': round(tm.medianMs, 3) });
      ctx.log(`N=${N} ${name}: ${round(tm.bestMs, 3)} ms (${dispatches} dispatches)`);
    }
    const chosen = chooseChunkTokens(rt.caps, N, E, k);
    const sizes = [16, 32, 64, 128, 256].map((chunks) => Math.ceil(N / chunks));
    for (const chunk of [...new Set([...sizes, chosen])].sort((a, b) => a - b)) {
      if (ctx.quick && chunk !== chosen) continue;
      const tm = await timeGpu(rt, () => {
        const r = routeAndDispatch(logits, { k, chunkTokens: chunk });
        disposeAll(r, r.plan);
      }, opts);
      sweep.push({ N, 'chunk tokens': chunk, chunks: Math.ceil(N / chunk), default: chunk === chosen ? 'yes' : '', 'best ms': round(tm.bestMs, 3), 'median ms': round(tm.medianMs, 3) });
    }
    logits.dispose();
    idx.dispose();
  }
  return [
    {
      title: 'router + dispatch plan, E=8, k=2',
      rows,
      notes: ['Dropless; one iteration = the whole path, many iterations per submit; best and median of the samples (the CPU is shared).'],
    },
    { title: 'routeAndDispatch by chunk size', rows: sweep, notes: ['Tokens per chunk of the fused path; every chunk size gives the same plan. default = chooseChunkTokens.'] },
  ];
}
