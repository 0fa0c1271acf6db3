/**
 * Sum / mean over an axis, sum of all elements, and the sum of squares of many tensors (the
 * global gradient norm). f32 accumulation in a fixed tree (per-thread runs, workgroup tree,
 * then passes over partials): deterministic, and no float atomics.
 */
import { grid1d } from './grid.ts';
import type { KernelPolicy } from './policy.ts';
import type { Tensor, Backend } from './tensor.ts';
import type { UniformValues } from './wgsl-interface.ts';

const WG = 256;

/** Below this many workgroups the reduction dimension is split into chunks (second pass). */
const TARGET_GROUPS = 256;
/**
 * The barrier-free serial path splits n into chunks until there are this many threads
 * (outputs x chunks), each summing at least SERIAL_MIN_CHUNK elements.
 */
const SERIAL_THREADS = 4096;
const SERIAL_MIN_CHUNK = 16;
/** Each thread sums at least this many elements of a chunk before the tree. */
const MIN_PER_THREAD = 64;

/** A tensor seen as [outer, n, inner], reduced over n. */
export interface AxisView {
  outer: number;
  n: number;
  inner: number;
}

export interface ReduceOptions {
  /** Multiply the result (1/n for a mean). */
  scale?: number;
  /** Shape of the result (default [outer, inner] with size-1 dims dropped, [1] for a scalar). */
  outShape?: readonly number[];
  /** Sum x * times elementwise instead of x (times has x's size): the backward of a broadcast mul. */
  times?: Tensor;
}

/** The [outer, n, inner] view of reducing `axis` of `shape` (negative axes count from the end). */
export function axisView(shape: readonly number[], axis: number): AxisView {
  const a = axis < 0 ? shape.length + axis : axis;
  if (a < 0 || a >= shape.length) throw new Error(`axis ${axis} out of range for shape [${shape.join(', ')}]`);
  const prod = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  return { outer: prod(shape.slice(0, a)), n: shape[a]!, inner: prod(shape.slice(a + 1)) };
}

function innerTile(inner: number): number {
  if (inner >= 64) return 64;
  if (inner >= 16) return 16;
  if (inner >= 4) return 4;
  return 1;
}

/** Sum (times `scale`) of x viewed as [outer, n, inner] over n. */
export function sumAxis(x: Tensor, view: AxisView, opts: ReduceOptions = {}): Tensor {
  const { outer, n, inner } = view;
  if (outer * n * inner !== x.size) throw new Error(`sumAxis: view [${outer}, ${n}, ${inner}] does not match ${x}`);
  if (opts.times && opts.times.size !== x.size) throw new Error(`sumAxis: times ${opts.times} does not match ${x}`);
  const outShape = opts.outShape ?? (outer * inner === 1 ? [1] : [outer, inner].filter((d) => d !== 1));
  if (outShape.reduce((p, d) => p * d, 1) !== outer * inner)
    throw new Error(`sumAxis: outShape [${outShape.join(', ')}] does not hold ${outer * inner} values`);
  return reducePass(x.rt, x, opts.times ?? null, view, opts.scale ?? 1, outShape);
}

/**
 * Whether a reduction runs one thread per (output, chunk) with no barriers, or as a workgroup tree,
 * as the policy says (policy.ts ReducePolicy, docs/DESIGN.md §9). The CPU family goes serial unless a
 * few outputs each need very many elements (barriers cost ~10 us on lavapipe); the GPU family uses
 * the tree unless each output has too few elements to fill a workgroup's lanes.
 */
export function serialReduction(policy: KernelPolicy, outputs: number, n: number): boolean {
  const r = policy.reduce;
  return outputs >= r.serialFromOutputs || (n < r.treeFromN && !(r.scalarTree && outputs <= 1));
}

function reducePass(rt: Backend, x: Tensor, times: Tensor | null, view: AxisView, scale: number, outShape: readonly number[]): Tensor {
  const { outer, n, inner } = view;
  // Variants measured on lavapipe (bench numbers in the closing notes): the workgroup tree costs a
  // barrier per step per workgroup; the serial path costs none. v1 used the tree below 4096 outputs
  // and took 70 ms for [1024 outputs x 64]; v2 (chunked serial) takes well under 1 ms there.
  // A scalar result keeps the tree: one workgroup finishes it in one pass (a handful of barriers)
  // where the serial path would need several passes.
  const serial = serialReduction(rt.policy, outer * inner, n);
  const ti = innerTile(inner);
  const tn = WG / ti;
  const innerTiles = Math.ceil(inner / ti);
  const base = outer * innerTiles;
  let chunkLen = Math.max(n, 1);
  if (serial) {
    const outputs = outer * inner;
    const want = Math.min(Math.ceil(SERIAL_THREADS / outputs), Math.ceil(n / SERIAL_MIN_CHUNK));
    chunkLen = Math.max(1, Math.ceil(n / Math.max(1, want)));
  } else if (base < TARGET_GROUPS) {
    // Split n only when there are too few workgroups otherwise and each chunk stays long.
    const want = Math.ceil(TARGET_GROUPS / base);
    chunkLen = Math.max(tn * MIN_PER_THREAD, Math.ceil(n / want));
  }
  const chunks = Math.max(1, Math.ceil(n / chunkLen));
  const final = chunks === 1;
  const out = rt.empty(final ? outShape : [outer, chunks, inner], 'f32', final ? 'sum' : 'sum partials');
  const types = [x.dtype, times?.dtype ?? 'f32'];
  for (const t of [x, times]) if (t && t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`sumAxis: ${t} is not a float tensor`);
  const kernel = rt.kernel({
    shader: 'reduce',
    entry: serial ? 'axis_serial' : 'axis',
    params: {
      ENABLE: types.includes('f16') ? 'enable f16;' : '',
      TX: x.dtype,
      TW: times?.dtype ?? 'f32',
      LOAD: times ? 'return f32(x[k]) * f32(w[k]);' : 'return f32(x[k]);',
      MANY_DECLS: '',
      MANY_CASES: '',
    },
    constants: serial ? {} : { TI: ti },
  });
  const u = { outer, n, inner, chunks, chunkLen, innerTiles, total: base * chunks, scale: final ? scale : 1 };
  rt.dispatch(kernel, times ? { out, x, w: times } : { out, x }, grid1d(rt, serial ? Math.ceil((outer * chunks * inner) / WG) : base * chunks), u);
  if (final) return out;
  const next = reducePass(rt, out, null, { outer, n: chunks, inner }, scale, outShape);
  out.dispose();
  return next;
}

/** Sum over `axis`; the result drops that axis (or keeps it as 1 with keepDim). */
export function sum(x: Tensor, axis: number, keepDim = false): Tensor {
  const v = axisView(x.shape, axis);
  return sumAxis(x, v, { outShape: reducedShape(x.shape, axis, keepDim) });
}

/** Mean over `axis` (mean of an empty axis is NaN, as 0/0). */
export function mean(x: Tensor, axis: number, keepDim = false): Tensor {
  const v = axisView(x.shape, axis);
  return sumAxis(x, v, { scale: 1 / v.n, outShape: reducedShape(x.shape, axis, keepDim) });
}

function reducedShape(shape: readonly number[], axis: number, keepDim: boolean): number[] {
  const a = axis < 0 ? shape.length + axis : axis;
  const s = shape.map((d, k) => (k === a ? 1 : d));
  if (keepDim) return s;
  s.splice(a, 1);
  return s.length ? s : [1];
}

/** Sum of all elements, shape [1]. */
export function sumAll(x: Tensor): Tensor {
  return sumAxis(x, { outer: 1, n: x.size, inner: 1 });
}

/** Tensors per many_sumsq dispatch: the shader's uniform tables hold 16; one binding is the output. */
export function manyBatch(rt: Backend, otherBindings = 1): number {
  return Math.max(1, Math.min(16 - otherBindings, rt.policy.limits.maxStorageBuffersPerShaderStage - otherBindings));
}

/** Elements per workgroup in the many-tensor kernels: 64 per thread, so the tree's barriers are amortised. */
export const MANY_CHUNK = WG * 64;

/** How a list of tensors is cut into dispatches of at most `batch`, each tensor into chunks (>= 1). */
export interface ManyPlan {
  groups: { start: number; count: number; first: number[]; total: number; outBase: number }[];
  /** Partial slots over all dispatches. */
  partials: number;
}

export function planMany(sizes: readonly number[], batch: number, chunkLen: number): ManyPlan {
  const groups: ManyPlan['groups'] = [];
  let outBase = 0;
  for (let start = 0; start < sizes.length; start += batch) {
    const count = Math.min(batch, sizes.length - start);
    const first: number[] = [];
    let total = 0;
    for (let k = 0; k < count; k++) {
      first.push(total);
      // At least one workgroup, so every tensor (even an empty one) writes its partial.
      total += Math.max(1, Math.ceil(sizes[start + k]! / chunkLen));
    }
    groups.push({ start, count, first, total, outBase });
    outBase += total;
  }
  return { groups, partials: outBase };
}

/** WGSL bindings firstBinding.. for the tensors of one many-dispatch, named in0, in1, ... */
export function manyDecls(tensors: readonly Tensor[], firstBinding = 1): string {
  return tensors.map((t, k) => `@group(0) @binding(${k + firstBinding}) var<storage, read> in${k}: array<${t.dtype}>;`).join('\n');
}

/** Sum of squares of every element of every tensor: a scalar [1] tensor (f32, tree-accumulated). */
export function sumSquaresMany(tensors: readonly Tensor[]): Tensor {
  if (tensors.length === 0) throw new Error('sumSquaresMany: no tensors');
  const rt = tensors[0]!.rt;
  for (const t of tensors) if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`sumSquaresMany: ${t} is not a float tensor`);
  const plan = planMany(
    tensors.map((t) => t.size),
    manyBatch(rt),
    MANY_CHUNK,
  );
  const partials = rt.empty([plan.partials], 'f32', 'sumsq partials');
  for (const g of plan.groups) {
    const ts = tensors.slice(g.start, g.start + g.count);
    const cases = ts.map((_, k) => `    case ${k}u: { for (var e = e0 + lidx; e < e1; e += WG) { let v = f32(in${k}[e]); acc += v * v; } }`).join('\n');
    const kernel = rt.kernel({
      shader: 'reduce',
      entry: 'many_sumsq',
      params: {
        ENABLE: ts.some((t) => t.dtype === 'f16') ? 'enable f16;' : '',
        TX: 'f32',
        TW: 'f32',
        LOAD: 'return 0.0;',
        MANY_DECLS: manyDecls(ts),
        MANY_CASES: cases,
      },
    });
    rt.dispatch(kernel, { out: partials, ...manyBindings(ts) }, grid1d(rt, g.total), manyUniforms(g, ts));
  }
  const total = sumAll(partials);
  partials.dispose();
  return total;
}

/** The ManyParams uniform values shared by the many-tensor kernels (reduce.wgsl, guard.wgsl), plus `extra` fields. */
export function manyUniforms(g: ManyPlan['groups'][number], ts: readonly Tensor[], extra: UniformValues = {}): UniformValues {
  return {
    count: g.count,
    chunkLen: MANY_CHUNK,
    outBase: g.outBase,
    total: g.total,
    sizes: ts.map((t) => t.size),
    first: g.first.slice(0, ts.length),
    ...extra,
  };
}

/** The tensors of one many-dispatch by their WGSL names (in0, in1, ...: manyDecls). */
export function manyBindings(ts: readonly Tensor[]): Record<string, Tensor> {
  return Object.fromEntries(ts.map((t, k) => [`in${k}`, t]));
}
