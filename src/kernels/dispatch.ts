/**
 * Token dispatch for MoE: routing indices -> expert-contiguous rows, all on the GPU (no
 * readback, so the step stays one submit). The grouped expert matmul consumes `offsets`
 * ([E + 1] u32) directly. Gather and combine are written gather-style (one writer per output
 * element, no atomics), so results are deterministic run to run.
 *
 * Capacity (optional; default dropless): C = ceil(capacityFactor * N * k / E); an expert keeps
 * its first C pairs in token order, later pairs are dropped: they get no row, pos = DROPPED,
 * and contribute 0 to combine (their weight is ignored, their d_weight is 0).
 *
 * The engine builds the plan with routeAndDispatch from the router logits (router + per-chunk
 * counts, then place_fused: 2 dispatches including the router). A second, independent construction
 * from given indices (count / scan / place) is a test oracle: test/support/dispatch-indices.ts.
 *
 * The row kernels (gather, combine and their backwards) take f32 or f16 storage (f16 needs the
 * device's shader-f16) and do their math in f32; routing weights and d_weights stay f32.
 */
import { floatDtype, type DType, type FloatDType, type Tensor, type Backend } from './tensor.ts';
import { routerTopKCounts, type RouterOptions, type RouterOutput } from './router.ts';
import { foldedGrid } from './grid.ts';
import type { KernelPolicy } from './policy.ts';

/** Marks a dropped pair in `pos`, and rows past offsets[E] in `src` / `rowPair`. */
const DROPPED = 0xffffffff;

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

/**
 * A dispatch.wgsl kernel. Row kernels: row length d, storage dtypes a and b of their two row
 * buffers (see the shader), f32 math. The plan kernels use the defaults (no row buffers).
 */
function kernel(rt: Backend, entry: string, d = 1, a: FloatDType = 'f32', b: FloatDType = 'f32', scale = '1.0') {
  const vec = width(d) === 4;
  const st = (t: DType) => (vec ? `vec4<${t}>` : t);
  return rt.kernel({
    shader: 'dispatch',
    entry,
    params: {
      SCALE: scale,
      V: st('f32'),
      VA: st(a),
      VB: st(b),
      HSUM: vec ? 'dot(acc, vec4<f32>(1.0))' : 'acc',
      ENABLES: a === 'f16' || b === 'f16' ? 'enable f16;' : '',
    },
    // The one source of the sizes the shader and this wrapper share.
    constants: { FUSED_WG },
  });
}

/** Per-expert capacity ceil(capacityFactor * n * k / e), or null when dropless. */
export function capacityOf(opts: DispatchOptions, n: number, k: number, e: number): number | null {
  if (opts.capacityFactor === undefined) return null;
  if (!(opts.capacityFactor > 0)) throw new Error(`dispatch: capacityFactor ${opts.capacityFactor} must be > 0`);
  return Math.ceil((opts.capacityFactor * n * k) / e);
}

/** The plan's tensors, uninitialised (the plan kernels write every element). */
export function planTensors(rt: Backend, n: number, k: number, e: number) {
  return {
    counts: rt.empty([e], 'u32', 'dispatch.counts'),
    offsets: rt.empty([e + 1], 'u32', 'dispatch.offsets'),
    dropped: rt.empty([1], 'u32', 'dispatch.dropped'),
    pos: rt.empty([n * k], 'u32', 'dispatch.pos'),
    src: rt.empty([n * k], 'u32', 'dispatch.src'),
    rowPair: rt.empty([n * k], 'u32', 'dispatch.rowPair'),
  };
}

/** Invocations per workgroup of place_fused (the shader's FUSED_WG override). */
const FUSED_WG = 8;

export interface RouteOptions extends RouterOptions, DispatchOptions {
  /** Must equal the logits' E when given (a guard for callers that track it separately). */
  numExperts?: number;
}

export interface RouteAndDispatch extends RouterOutput {
  plan: DispatchPlan;
}

/**
 * Tokens per chunk for routeAndDispatch, within the policy's bounds (policy.ts DispatchPolicy,
 * docs/DESIGN.md §9). Both passes run one invocation per chunk, so chunks bound their parallelism;
 * but every place_fused invocation also reads the counts of all chunks (chunks * E per invocation,
 * chunks^2 * E in all), while walking the pairs costs N * k in all whatever the chunking.
 * 2 * sqrt(N * k / E) chunks keeps the quadratic term at or below the linear one. The CPU family
 * clamps to 16..256 chunks (enough workgroups of 8 for a few cores; measured on lavapipe,
 * bench/dispatch.bench.ts sweeps it); the GPU family to 64..1024, which a GPU's thousands of
 * lanes need and its caches absorb.
 */
export function chooseChunkTokens(policy: KernelPolicy, n: number, e: number, k: number): number {
  const { minChunks, maxChunks } = policy.dispatch;
  const chunks = Math.min(maxChunks, Math.max(minChunks, Math.round(2 * Math.sqrt((n * k) / e))));
  return Math.max(1, Math.ceil(n / chunks));
}

/**
 * The chunk size routeAndDispatch uses: the policy's fixed dispatch.chunkTokens (tests and the
 * benchmark force one; any positive value gives the same results) or chooseChunkTokens, at most N.
 */
export function fusedChunkTokens(policy: KernelPolicy, n: number, e: number, k: number): number {
  // A chunk longer than N is one chunk of N tokens (and keeps chunk indices far from overflow).
  return Math.min(policy.dispatch.chunkTokens ?? chooseChunkTokens(policy, n, e, k), Math.max(n, 1));
}

/**
 * The router and the dispatch plan from the router logits [N, E] (f32) in 2 dispatches: the
 * router also counts each chunk's pairs per expert, then one pass per chunk sums the counts and
 * places its pairs. probs, idx and weights equal the plain router's (test/support/router-topk.ts)
 * bit for bit, and the plan equals the 3-pass plan from those indices
 * (test/support/dispatch-indices.ts): same tensors, same deterministic order, capacity included.
 * The caller owns every returned tensor (disposeDispatch(plan) for the plan).
 */
export function routeAndDispatch(logits: Tensor, opts: RouteOptions = {}): RouteAndDispatch {
  const rt = logits.rt;
  if (logits.shape.length !== 2) throw new Error(`routeAndDispatch: logits must be [N, E], got ${logits}`);
  const [n, e] = logits.shape as [number, number];
  if (opts.numExperts !== undefined && opts.numExperts !== e) throw new Error(`routeAndDispatch: numExperts=${opts.numExperts} but logits ${logits} have ${e}`);
  const k = opts.k ?? 2;
  const capacity = capacityOf(opts, n, k, e); // validated before anything is recorded
  const chunkTokens = fusedChunkTokens(rt.policy, n, e, k);
  const { probs, idx, weights, chunkCounts } = routerTopKCounts(logits, opts, chunkTokens);
  const chunks = Math.ceil(n / chunkTokens);
  const plan = planTensors(rt, n, k, e);
  const u = { n, e, k, cap: capacity ?? 0xffffffff, chunks, chunk: chunkTokens };
  rt.dispatch(
    kernel(rt, 'place_fused'),
    {
      f_idx: idx,
      f_chunk: chunkCounts,
      f_counts: plan.counts,
      f_offsets: plan.offsets,
      f_dropped: plan.dropped,
      f_pos: plan.pos,
      f_src: plan.src,
      f_pair: plan.rowPair,
    },
    foldedGrid(rt, Math.max(chunks, 1), FUSED_WG),
    u,
  );
  chunkCounts.dispose(); // queue order keeps it alive for the recorded work
  return { probs, idx, weights, plan: { n, k, e, capacity, ...plan } };
}

export function disposeDispatch(plan: DispatchPlan): void {
  for (const t of [plan.counts, plan.offsets, plan.pos, plan.src, plan.rowPair, plan.dropped]) t.dispose();
}

function rowDims(t: Tensor, rows: number, what: string): number {
  if (t.shape.length !== 2 || t.shape[0] !== rows) throw new Error(`${what}: expected [${rows}, d], got ${t}`);
  return t.shape[1]!;
}

/** Row-kernel uniforms; the row length is counted in vector elements. */
function rowParams(plan: DispatchPlan, d: number) {
  return { n: plan.n, k: plan.k, d: d / width(d), e: plan.e };
}

/** xs [N * k, d]: row r = x[src[r]] in expert-contiguous order; rows past offsets[E] are 0. */
export function gatherRows(x: Tensor, plan: DispatchPlan): Tensor {
  const rt = x.rt;
  const d = rowDims(x, plan.n, 'gatherRows x');
  const t = floatDtype(x, 'gatherRows x');
  const xs = rt.empty([plan.n * plan.k, d], t, 'dispatch.xs');
  rt.dispatch(
    kernel(rt, 'gather', d, t, t),
    { g_x: x, g_src: plan.src, g_offsets: plan.offsets, g_xs: xs },
    foldedGrid(rt, (plan.n * plan.k * d) / width(d), 256),
    rowParams(plan, d),
  );
  return xs;
}

/** dx [N, d] = Σ_j d_xs[pos[t, j]] over kept pairs, summed in f32; dx has d_xs's dtype. */
export function gatherRowsBackward(dxs: Tensor, plan: DispatchPlan): Tensor {
  const rt = dxs.rt;
  const d = rowDims(dxs, plan.n * plan.k, 'gatherRowsBackward d_xs');
  const t = floatDtype(dxs, 'gatherRowsBackward d_xs');
  const dx = rt.empty([plan.n, d], t, 'dispatch.dx');
  rt.dispatch(kernel(rt, 'token_sum', d, t, t), { t_rows: dxs, t_pos: plan.pos, t_out: dx }, foldedGrid(rt, (plan.n * d) / width(d), 256), rowParams(plan, d));
  return dx;
}

/**
 * y [N, d] = Σ_j w[t, j] ys[pos[t, j]] over kept pairs; ys is [N * k, d] in sorted order.
 * ys f32 or f16 (y gets its dtype, the sum is f32), weights f32.
 */
export function combine(ys: Tensor, weights: Tensor, plan: DispatchPlan): Tensor {
  const rt = ys.rt;
  const d = rowDims(ys, plan.n * plan.k, 'combine ys');
  const t = floatDtype(ys, 'combine ys');
  checkWeights(weights, plan);
  const y = rt.empty([plan.n, d], t, 'dispatch.y');
  rt.dispatch(
    kernel(rt, 'token_sum', d, t, t, 't_w[p]'),
    { t_rows: ys, t_pos: plan.pos, t_out: y, t_w: weights },
    foldedGrid(rt, (plan.n * d) / width(d), 256),
    rowParams(plan, d),
  );
  return y;
}

/**
 * d_ys [N * k, d] (0 on unused rows) and d_weights [N, k] (0 for dropped pairs). dy and ys are
 * f32 or f16 independently; d_ys gets ys's dtype, d_weights is f32 (an f32 dot product).
 */
export function combineBackward(dy: Tensor, ys: Tensor, weights: Tensor, plan: DispatchPlan): { dys: Tensor; dWeights: Tensor } {
  const rt = dy.rt;
  const d = rowDims(dy, plan.n, 'combineBackward dy');
  if (rowDims(ys, plan.n * plan.k, 'combineBackward ys') !== d) throw new Error(`combineBackward: ys ${ys} and dy ${dy} differ in row length`);
  const tdy = floatDtype(dy, 'combineBackward dy');
  const tys = floatDtype(ys, 'combineBackward ys');
  checkWeights(weights, plan);
  const u = rowParams(plan, d);
  const dys = rt.empty([plan.n * plan.k, d], tys, 'dispatch.d_ys');
  rt.dispatch(
    kernel(rt, 'combine_dys', d, tdy, tys),
    { b_dy: dy, b_w: weights, b_pair: plan.rowPair, b_offsets: plan.offsets, b_dys: dys },
    foldedGrid(rt, (plan.n * plan.k * d) / width(d), 256),
    u,
  );
  const dWeights = rt.empty([plan.n, plan.k], 'f32', 'dispatch.d_weights');
  rt.dispatch(kernel(rt, 'combine_dw', d, tdy, tys), { w_dy: dy, w_ys: ys, w_pos: plan.pos, w_dw: dWeights }, foldedGrid(rt, plan.n * plan.k, 64), u);
  return { dys, dWeights };
}

function checkWeights(w: Tensor, plan: DispatchPlan): void {
  if (w.shape.length !== 2 || w.shape[0] !== plan.n || w.shape[1] !== plan.k) throw new Error(`dispatch: weights ${w} are not [${plan.n}, ${plan.k}]`);
  if (w.dtype !== 'f32') throw new Error(`dispatch: weights ${w} must be f32 (routing weights stay f32)`);
}
