/**
 * Test oracle: the token dispatch plan built from GIVEN router indices, in 3 passes (count / scan /
 * place; shaders/test/dispatch-indices.wgsl). The engine never builds a plan this way — it routes
 * and places in 2 dispatches (src/kernels/dispatch.ts routeAndDispatch) — but tests need plans for
 * routing patterns they choose themselves, and the fused plan must equal this independent
 * construction bit for bit. bench/dispatch.bench.ts times it against the fused path.
 */
import type { Tensor } from '../../src/kernels/tensor.ts';
import { capacityOf, planTensors, type DispatchOptions, type DispatchPlan } from '../../src/kernels/dispatch.ts';
import { MAX_EXPERTS } from '../../src/kernels/router.ts';
import { foldedGrid } from '../../src/kernels/grid.ts';

/** Tokens per (chunk, expert) invocation of the 3-pass plan (the shader's CHUNK override). */
const CHUNK = 64;

/** Build the permutation from router indices idx [N, k] (u32, values < numExperts). */
export function buildDispatch(idx: Tensor, numExperts: number, opts: DispatchOptions = {}): DispatchPlan {
  const rt = idx.rt;
  if (idx.shape.length !== 2 || idx.dtype !== 'u32') throw new Error(`dispatch: idx must be [N, k] u32, got ${idx}`);
  const [n, k] = idx.shape as [number, number];
  const e = numExperts;
  if (!Number.isInteger(e) || e < 1 || e > MAX_EXPERTS) throw new Error(`dispatch: ${e} experts; supported 1..${MAX_EXPERTS}`);
  const capacity = capacityOf(opts, n, k, e);
  const chunks = Math.ceil(n / CHUNK);
  const u = { n, e, k, cap: capacity ?? 0xffffffff, chunks, chunk: CHUNK };
  const kernel = (entry: string) => rt.kernel({ shader: 'test/dispatch-indices', entry, constants: { CHUNK } });

  const chunkBase = rt.empty([chunks * e], 'u32', 'dispatch.chunk');
  const { counts, offsets, dropped, pos, src, rowPair } = planTensors(rt, n, k, e);

  const grid = foldedGrid(rt, chunks * e, 64);
  rt.dispatch(kernel('count'), { c_idx: idx, c_chunk: chunkBase }, grid, u);
  rt.dispatch(kernel('scan'), { s_chunk: chunkBase, s_counts: counts, s_offsets: offsets, s_dropped: dropped, s_src: src, s_pair: rowPair }, [1], u);
  rt.dispatch(kernel('place'), { p_idx: idx, p_chunk: chunkBase, p_offsets: offsets, p_pos: pos, p_src: src, p_pair: rowPair }, grid, u);
  chunkBase.dispose(); // queue order keeps it alive for the recorded work
  return { n, k, e, capacity, counts, offsets, pos, src, rowPair, dropped };
}
