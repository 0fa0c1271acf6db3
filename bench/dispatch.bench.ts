/**
 * MoE routing plan: router + token permutation, the 4-dispatch path (routerTopK, then
 * buildDispatch's count / scan / place) against the fused 2-dispatch routeAndDispatch, at a
 * small-model micro-batch (N = 1024 tokens) and a large one (N = 16384), E = 8, k = 2.
 * Also the pieces alone, and the fused path over a few chunk sizes (how its heuristic was picked).
 */
import { getRuntime } from '../src/kernels/node/dawn.ts';
import type { Tensor } from '../src/kernels/tensor.ts';
import { routerTopK } from '../test/support/router-topk.ts';
import { buildDispatch } from '../test/support/dispatch-indices.ts';
import { chooseChunkTokens, disposeDispatch, routeAndDispatch, type DispatchPlan } from '../src/kernels/dispatch.ts';
import {
  combineOutcomes,
  compareOutput,
  round,
  timeCase,
  timingCells,
  type BenchRow,
  type CheckOutcome,
  type SuiteContext,
  type SuiteResult,
} from './harness.ts';
import { routerRef } from '../test/reference/router-ref.ts';
import { dispatchRef, type DispatchRef } from '../test/reference/dispatch-ref.ts';

function disposeAll(r: { probs: Tensor; idx: Tensor; weights: Tensor }, plan?: DispatchPlan): void {
  for (const t of [r.probs, r.idx, r.weights]) t.dispose();
  if (plan) disposeDispatch(plan);
}

/** A plan's tensors against the float64 permutation: every index exact. */
async function checkPlan(plan: DispatchPlan, ref: DispatchRef): Promise<CheckOutcome> {
  const [counts, offsets, pos, src, rowPair, dropped] = await Promise.all(
    [plan.counts, plan.offsets, plan.pos, plan.src, plan.rowPair, plan.dropped].map(async (t) => Array.from(await t.read())),
  );
  return combineOutcomes(
    compareOutput(counts!, ref.counts, 0),
    compareOutput(offsets!, ref.offsets, 0),
    compareOutput(pos!, ref.pos, 0),
    compareOutput(src!, ref.src, 0),
    compareOutput(rowPair!, ref.rowPair, 0),
    compareOutput(dropped!, [ref.dropped], 0),
  );
}

/** Router outputs against float64 (f32 softmax of O(1) logits: 1e-5 of the largest), picks exact. */
async function checkRouted(r: { probs: Tensor; idx: Tensor; weights: Tensor }, ref: ReturnType<typeof routerRef>): Promise<CheckOutcome> {
  return combineOutcomes(
    compareOutput(await r.probs.readF32(), ref.probs, 1e-5),
    compareOutput(Array.from(await r.idx.read()), ref.idx, 0),
    compareOutput(await r.weights.readF32(), ref.weights, 1e-5),
  );
}

export async function run(ctx: SuiteContext): Promise<SuiteResult[]> {
  const rt = await getRuntime({ announce: false });
  const opts = { sampleMs: ctx.quick ? 60 : 200, samples: ctx.quick ? 3 : 7 };
  const rows: BenchRow[] = [];
  const sweep: BenchRow[] = [];
  const E = 8;
  const k = 2;
  for (const N of ctx.quick ? [1024] : [1024, 16384]) {
    const hostLogits = Float32Array.from({ length: N * E }, () => (Math.random() * 2 - 1) * 2);
    const logits = rt.upload(hostLogits, [N, E]);
    const idx = routerTopK(logits, { k }).idx;
    const rref = routerRef(hostLogits, N, E, k, false);
    const pref = dispatchRef(rref.idx, N, E, k);
    const dispatchesOf = (record: () => void) => {
      const d0 = rt.recorder.dispatches;
      record();
      return rt.recorder.dispatches - d0;
    };
    const cases: [string, () => void, () => Promise<CheckOutcome>][] = [
      [
        'routerTopK + buildDispatch (old)',
        () => {
          const r = routerTopK(logits, { k });
          disposeAll(r, buildDispatch(r.idx, E));
        },
        async () => {
          const r = routerTopK(logits, { k });
          const plan = buildDispatch(r.idx, E);
          const c = combineOutcomes(await checkRouted(r, rref), await checkPlan(plan, pref));
          disposeAll(r, plan);
          return c;
        },
      ],
      [
        'routeAndDispatch (fused)',
        () => {
          const r = routeAndDispatch(logits, { k });
          disposeAll(r, r.plan);
        },
        async () => {
          const r = routeAndDispatch(logits, { k });
          const c = combineOutcomes(await checkRouted(r, rref), await checkPlan(r.plan, pref));
          disposeAll(r, r.plan);
          return c;
        },
      ],
      [
        'routerTopK alone',
        () => disposeAll(routerTopK(logits, { k })),
        async () => {
          const r = routerTopK(logits, { k });
          const c = await checkRouted(r, rref);
          disposeAll(r);
          return c;
        },
      ],
      [
        'buildDispatch alone',
        () => disposeDispatch(buildDispatch(idx, E)),
        async () => {
          const plan = buildDispatch(idx, E);
          const c = await checkPlan(plan, pref);
          disposeDispatch(plan);
          return c;
        },
      ],
    ];
    for (const [name, record, check] of cases) {
      const dispatches = dispatchesOf(record);
      await rt.sync();
      const { timing: tm, check: ck } = await timeCase(rt, { key: `dispatch N=${N} ${name}`, record, check }, opts);
      rows.push({ N, E, k, path: name, dispatches, check: ck.text, 'best ms': tm ? round(tm.bestMs, 3) : null, ...timingCells(tm) });
      ctx.log(`N=${N} ${name}: ${tm ? `${round(tm.medianMs, 3)} ms median` : 'not timed'} (${dispatches} dispatches; check ${ck.text})`);
    }
    const chosen = chooseChunkTokens(rt.policy, N, E, k);
    const sizes = [16, 32, 64, 128, 256].map((chunks) => Math.ceil(N / chunks));
    for (const chunk of [...new Set([...sizes, chosen])].sort((a, b) => a - b)) {
      if (ctx.quick && chunk !== chosen) continue;
      const forced = { dispatch: { chunkTokens: chunk } };
      const { timing: tm, check: ck } = await timeCase(
        rt,
        {
          key: `dispatch N=${N} chunk ${chunk}`,
          record: () => {
            const r = rt.withPolicy(forced, () => routeAndDispatch(logits, { k }));
            disposeAll(r, r.plan);
          },
          check: async () => {
            const r = rt.withPolicy(forced, () => routeAndDispatch(logits, { k }));
            const c = combineOutcomes(await checkRouted(r, rref), await checkPlan(r.plan, pref));
            disposeAll(r, r.plan);
            return c;
          },
        },
        opts,
      );
      sweep.push({
        N,
        'chunk tokens': chunk,
        chunks: Math.ceil(N / chunk),
        default: chunk === chosen ? 'yes' : '',
        check: ck.text,
        'best ms': tm ? round(tm.bestMs, 3) : null,
        ...timingCells(tm),
      });
    }
    logits.dispose();
    idx.dispose();
  }
  return [
    {
      title: 'router + dispatch plan, E=8, k=2',
      rows,
      notes: [
        'Dropless; one iteration = the whole path, many iterations per submit; best, median and min–max of the samples (the CPU is shared: compare medians, read them against the spread).',
        'check: probs and weights against float64 (1e-5 of the largest), picks and every plan index exact, once per case before timing; a wrong one is not timed.',
      ],
    },
    {
      title: 'routeAndDispatch by chunk size',
      rows: sweep,
      notes: ['Tokens per chunk of the fused path; every chunk size gives the same plan (checked). default = chooseChunkTokens.'],
    },
  ];
}
