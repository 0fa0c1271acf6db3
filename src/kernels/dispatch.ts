/**
 * Token dispatch for MoE: routing indices -> expert-contiguous rows, all on the GPU (no
 * readback, so the step stays one submit). The grouped expert matmul consumes `offsets`
 * ([E + 1] u32) directly. Gather and combine are written gather-style (one writer per output
 * element, no atomics), so results are deterministic run to run.
 *
 * Capacity (optional; default dropless): C = ceil(capacityFactor * N * k / E); an expert keeps
 * its first C pairs in token order, later pairs are dropped: they get no row, pos = DROPPED,
 * and contribute 0 to combine (their weight is ignored, their d_weight is 0).
 */
import type { Tensor } from './tensor.ts';
import type { Runtime } from './runtime.ts';
import { MAX_EXPERTS } from './router.ts';
import { foldedGrid } from './grid.ts';

/** Marks a dropped pair in `pos`, and rows past offsets[E] in `src` / `rowPair`. */
export const DROPPED = 0xffffffff;
const CHUNK = 64; // tokens per (chunk, expert) invocation; must match dispatch.wgsl

export interface DispatchOptions {
  /** Enables token dropping at capacity ceil(capacityFactor * N * k / E). Omit for dropless. */
  capacityFactor?: number;
}

export interface DispatchPlan {
  readonly n: number;
  readonly k: number;
  readonly e: number;
  /** Per-expert capacity, or null when dropless. */
  readonly capacity: number | null;
  /** [E] u32 rows kept per expert (= offsets[e + 1] - offsets[e]). */
  readonly counts: Tensor;
  /** [E + 1] u32 exclusive prefix sum of counts; offsets[E] = kept rows. */
  readonly offsets: Tensor;
  /** [N * k] u32 sorted row of pair (t, j) = t * k + j, or DROPPED. */
  readonly pos: Tensor;
  /** [N * k] u32 token of each sorted row (DROPPED past offsets[E]). */
  readonly src: Tensor;
  /** [N * k] u32 pair index t * k + j of each sorted row (DROPPED past offsets[E]). */
  readonly rowPair: Tensor;
  /** [1] u32 number of dropped pairs (0 when dropless). */
  readonly dropped: Tensor;
}

/** Row kernels move vec4s when the row length allows it (4x fewer invocations and index divisions). */
function width(d: number): 1 | 4 {
  return d % 4 === 0 ? 4 : 1;
}

function kernel(rt: Runtime, entry: string, d = 1, scale = '1.0') {
  const vec = width(d) === 4;
  return rt.kernel({
    shader: 'dispatch',
    entry,
    params: { SCALE: scale, V: vec ? 'vec4<f32>' : 'f32', HSUM: vec ? 'dot(acc, vec4<f32>(1.0))' : 'acc' },
  });
}

/** Build the permutation from router indices idx [N, k] (u32, values < numExperts). */
export function buildDispatch(idx: Tensor, numExperts: number, opts: DispatchOptions = {}): DispatchPlan {
  const rt = idx.rt;
  if (idx.shape.length !== 2 || idx.dtype !== 'u32') throw new Error(`dispatch: idx must be [N, k] u32, got ${idx}`);
  const [n, k] = idx.shape as [number, number];
  const e = numExperts;
  if (!Number.isInteger(e) || e < 1 || e > MAX_EXPERTS) throw new Error(`dispatch: ${e} experts; supported 1..${MAX_EXPERTS}`);
  let capacity: number | null = null;
  if (opts.capacityFactor !== undefined) {
    if (!(opts.capacityFactor > 0)) throw new Error(`dispatch: capacityFactor ${opts.capacityFactor} must be > 0`);
    capacity = Math.ceil((opts.capacityFactor * n * k) / e);
  }
  const chunks = Math.ceil(n / CHUNK);
  const u = new Uint32Array([n, e, k, capacity ?? 0xffffffff, chunks, 0, 0, 0]);

  const chunkBase = rt.empty([chunks * e], 'u32', 'dispatch.chunk');
  const counts = rt.empty([e], 'u32', 'dispatch.counts');
  const offsets = rt.empty([e + 1], 'u32', 'dispatch.offsets');
  const dropped = rt.empty([1], 'u32', 'dispatch.dropped');
  const pos = rt.empty([n * k], 'u32', 'dispatch.pos');
  const src = rt.empty([n * k], 'u32', 'dispatch.src');
  const rowPair = rt.empty([n * k], 'u32', 'dispatch.rowPair');

  const grid = foldedGrid(chunks * e, 64);
  rt.dispatch(kernel(rt, 'count'), [idx, chunkBase], grid, u);
  rt.dispatch(kernel(rt, 'scan'), [chunkBase, counts, offsets, dropped, src, rowPair], [1], u);
  rt.dispatch(kernel(rt, 'place'), [idx, chunkBase, offsets, pos, src, rowPair], grid, u);
  chunkBase.dispose(); // queue order keeps it alive for the recorded work
  return { n, k, e, capacity, counts, offsets, pos, src, rowPair, dropped };
}

export function disposeDispatch(plan: DispatchPlan): void {
  for (const t of [plan.counts, plan.offsets, plan.pos, plan.src, plan.rowPair, plan.dropped]) t.dispose();
}

function rowDims(t: Tensor, rows: number, what: string): number {
  if (t.shape.length !== 2 || t.shape[0] !== rows) throw new Error(`${what}: expected [${rows}, d], got ${t}`);
  return t.shape[1]!;
}

/** Row-kernel uniforms; the row length is counted in vector elements. */
function rowParams(plan: DispatchPlan, d: number): Uint32Array {
  return new Uint32Array([plan.n, plan.k, d / width(d), plan.e]);
}

/** xs [N * k, d]: row r = x[src[r]] in expert-contiguous order; rows past offsets[E] are 0. */
export function gatherRows(x: Tensor, plan: DispatchPlan): Tensor {
  const rt = x.rt;
  const d = rowDims(x, plan.n, 'gatherRows x');
  const xs = rt.empty([plan.n * plan.k, d], 'f32', 'dispatch.xs');
  rt.dispatch(kernel(rt, 'gather', d), [x, plan.src, plan.offsets, xs], foldedGrid((plan.n * plan.k * d) / width(d), 256), rowParams(plan, d));
  return xs;
}

/** dx [N, d] = Σ_j d_xs[pos[t, j]] over kept pairs. */
export function gatherRowsBackward(dxs: Tensor, plan: DispatchPlan): Tensor {
  const rt = dxs.rt;
  const d = rowDims(dxs, plan.n * plan.k, 'gatherRowsBackward d_xs');
  const dx = rt.empty([plan.n, d], 'f32', 'dispatch.dx');
  rt.dispatch(kernel(rt, 'token_sum', d), [dxs, plan.pos, dx], foldedGrid((plan.n * d) / width(d), 256), rowParams(plan, d));
  return dx;
}

/** y [N, d] = Σ_j w[t, j] ys[pos[t, j]] over kept pairs; ys is [N * k, d] in sorted order. */
export function combine(ys: Tensor, weights: Tensor, plan: DispatchPlan): Tensor {
  const rt = ys.rt;
  const d = rowDims(ys, plan.n * plan.k, 'combine ys');
  checkWeights(weights, plan);
  const y = rt.empty([plan.n, d], 'f32', 'dispatch.y');
  rt.dispatch(kernel(rt, 'token_sum', d, 't_w[p]'), [ys, plan.pos, y, weights], foldedGrid((plan.n * d) / width(d), 256), rowParams(plan, d));
  return y;
}

/** d_ys [N * k, d] (0 on unused rows) and d_weights [N, k] (0 for dropped pairs). */
export function combineBackward(dy: Tensor, ys: Tensor, weights: Tensor, plan: DispatchPlan): { dys: Tensor; dWeights: Tensor } {
  const rt = dy.rt;
  const d = rowDims(dy, plan.n, 'combineBackward dy');
  rowDims(ys, plan.n * plan.k, 'combineBackward ys');
  checkWeights(weights, plan);
  const u = rowParams(plan, d);
  const dys = rt.empty([plan.n * plan.k, d], 'f32', 'dispatch.d_ys');
  rt.dispatch(kernel(rt, 'combine_dys', d), [dy, weights, plan.rowPair, plan.offsets, dys], foldedGrid((plan.n * plan.k * d) / width(d), 256), u);
  const dWeights = rt.empty([plan.n, plan.k], 'f32', 'dispatch.d_weights');
  rt.dispatch(kernel(rt, 'combine_dw', d), [dy, ys, plan.pos, dWeights], foldedGrid(plan.n * plan.k, 64), u);
  return { dys, dWeights };
}

function checkWeights(w: Tensor, plan: DispatchPlan): void {
  if (w.shape[0] !== plan.n || w.shape[1] !== plan.k) throw new Error(`dispatch: weights ${w} are not [${plan.n}, ${plan.k}]`);
}
