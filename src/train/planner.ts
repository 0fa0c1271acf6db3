/**
 * Memory planner: how many bytes one training step of a Time-MoE model needs on the GPU, and
 * whether it fits a budget (default: one 24 GiB RTX 3090 minus a context reserve).
 *
 * Rather than summing formulas, the planner *replays* the step on virtual tensors: the same ops in
 * the same order as src/model (forward, losses, backward), each allocating what its kernel wrapper
 * allocates (outputs, and temporaries such as reduction partials), rounded through sizeClass() as
 * the buffer pool rounds them, with the tape's ownership rules (src/autograd/graph.ts): intermediate
 * values are held until backward starts, saved tensors are ref-counted and freed right after their
 * node's backward, pass-through gradients alias. Live and peak bytes are therefore what
 * rt.memory() reports for the same step (checked on lavapipe by test/planner/accuracy.test.ts).
 *
 * Steady state is planned: parameter gradients stay allocated between steps (zeroGrad fills them)
 * and AdamW m/v are resident. Activation recomputation (schedule.recompute) is modelled as the
 * engine runs it (src/autograd/recompute.ts); f16 activations (precision.activations) follow the
 * engine's dtype rules: every op keeps its input's dtype except the router logits and the heads
 * (f32), norm/attention statistics, router probabilities and losses stay f32.
 */
import { sizeClass } from '../kernels/buffer-pool.ts';
import { fusedChunkTokens } from '../kernels/dispatch.ts';
import { chunkCountsShape } from '../kernels/router.ts';
import { storageBytes, type DType } from '../kernels/tensor.ts';
import { countParameters, type ModelConfig } from '../model/config.ts';

export const GIB = 1024 ** 3;
export const MIB = 1024 ** 2;
/** RTX 3090 (DESIGN §1). */
export const DEFAULT_BUDGET_BYTES = 24 * GIB;
/** Kept free for the CUDA/Vulkan context, Dawn's own allocations and fragmentation. */
export const DEFAULT_RESERVE_BYTES = 0.5 * GIB;

export interface RunOptions {
  microBatch: number;
  contextLength: number;
  /** Storage of activations and their gradients; master weights, grads and AdamW state stay f32. */
  dtype: 'f32' | 'f16';
  optimizer: 'adamw';
  /** Keep only each layer's input and recompute the layer in backward (schedule.recompute). */
  recompute: boolean;
  /**
   * 'resident': parameter gradients stay allocated between steps (zeroGrad fills them); 'freed'
   * (what the Trainer does): they are freed after the update and the next backward's first
   * gradient becomes the buffer. Default 'resident'.
   */
  gradients?: 'resident' | 'freed';
  /** Total GPU memory (default 24 GiB). */
  budgetBytes?: number;
  /** Subtracted from the budget (default 0.5 GiB). */
  reserveBytes?: number;
  /** Balancing-loss convention (its buffers differ slightly). Default 'pooled'. */
  auxConvention?: 'pooled' | 'switch';
}

/** Where a byte lives at the peak. */
export type Category =
  | 'parameters'
  | 'gradients'
  | 'optimizer'
  | 'inputs'
  | 'savedActivations'
  | 'heldActivations'
  | 'recomputedActivations'
  | 'activationGradients'
  | 'weightGradientTemps'
  | 'kernelTemps';

export const CATEGORY_LABELS: Record<Category, string> = {
  parameters: 'parameters (f32 master weights)',
  gradients: 'parameter gradients (f32)',
  optimizer: 'AdamW m + v (f32)',
  inputs: 'batch inputs, targets, RoPE table',
  savedActivations: 'activations saved for backward',
  heldActivations: 'activations held until backward starts',
  recomputedActivations: 'activations recomputed in backward',
  activationGradients: 'activation gradients in flight',
  weightGradientTemps: 'weight-gradient temporaries',
  kernelTemps: 'kernel temporaries (partials, scratch)',
};

export type Group = 'embedding' | 'attention' | 'norm' | 'router' | 'dispatch' | 'experts' | 'shared' | 'residual' | 'head' | 'loss' | 'input';

export interface TensorItem {
  group: Group;
  name: string;
  /** Pool bytes (sizeClass-rounded). */
  bytes: number;
  /** Still needed by a pending backward after the forward (otherwise freed when backward starts). */
  saved: boolean;
  /** Decoder layer (-1 outside the layers). */
  layer: number;
}

export interface ActivationBlock {
  items: TensorItem[];
  savedBytes: number;
  /** Held only by the tape until backward starts. */
  heldBytes: number;
  bytes: number;
}

export interface Suggestion {
  knob: 'microBatch' | 'contextLength' | 'recompute' | 'dtype' | 'none';
  from: string;
  to: string;
  /** The run options to change (empty when nothing helps). */
  apply: Partial<RunOptions>;
  /** Planned peak once applied (null when nothing fits). */
  peakBytes: number | null;
  text: string;
}

export interface MemoryPlan {
  model: { preset: string; parameters: number; activeParameters: number; layers: number };
  run: Required<RunOptions>;
  tokens: number;
  /** `bytes` = exact count x 4; `allocatedBytes` = per-tensor sizeClass sums (what the pool holds). */
  parameters: { count: number; tensors: number; bytes: number; allocatedBytes: number };
  gradients: { bytes: number; allocatedBytes: number };
  optimizer: { bytes: number; allocatedBytes: number };
  inputs: { items: TensorItem[]; bytes: number };
  activations: {
    /** One decoder layer (all layers are alike), at the end of the forward. */
    perLayer: ActivationBlock;
    layers: number;
    /** All decoder layers together. */
    layersBytes: number;
    embedding: ActivationBlock;
    head: ActivationBlock;
    loss: ActivationBlock;
    savedBytes: number;
    /** Every activation alive at the end of the forward (saved + held). */
    forwardEndBytes: number;
  };
  backward: {
    /** Highest live bytes while backward runs. */
    peakBytes: number;
    /** At that moment: activation gradients + weight-gradient temporaries + kernel temporaries (+ recomputed activations). */
    transientBytes: number;
    /** Largest transient tensors alive then. */
    largest: TensorItem[];
  };
  peak: { bytes: number; phase: 'forward' | 'backward'; breakdown: Record<Category, number> };
  /** = peak.bytes (the planned total). */
  totalBytes: number;
  /** = budget.totalBytes (before the reserve). */
  budgetBytes: number;
  budget: { totalBytes: number; reserveBytes: number; usableBytes: number };
  fits: boolean;
  /** usable - peak (negative when it does not fit). */
  headroomBytes: number;
  /** Largest micro-batch that fits with the other settings unchanged (0: none). */
  maxMicroBatch: number;
  /** The biggest single buffer of the step: it must fit the device's maxStorageBufferBindingSize. */
  largestTensor: TensorItem;
  suggestions: Suggestion[];
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Virtual tensors, pool accounting and the tape (mirrors src/autograd/graph.ts and variable.ts).

type Kind = 'param' | 'grad' | 'optimizer' | 'input' | 'activation' | 'recomputed' | 'actGrad' | 'weightGrad' | 'temp';

class VT {
  refs = 0;
  alive = true;
  /** Survived the tape's release at backward start (i.e. saved by some node). */
  saved = false;
  constructor(
    readonly shape: readonly number[],
    readonly bytes: number,
    readonly kind: Kind,
    readonly group: Group,
    readonly layer: number,
    readonly name: string,
    readonly dtype: DType,
  ) {}
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

type Phase = 'setup' | 'forward' | 'backward';

class Mem {
  live = 0;
  peak = 0;
  peakPhase: Phase = 'setup';
  peakSet: VT[] = [];
  bwPeak = 0;
  bwPeakSet: VT[] = [];
  largest: VT | null = null;
  phase: Phase = 'setup';
  /** Tag for tensors allocated now (set by the model replay and by each node's backward). */
  group: Group = 'input';
  layer = -1;
  /** Bytes per element of activations and their gradients. */
  constructor(readonly act: DType) {}
  private readonly set = new Set<VT>();
  /** Recompute mode re-materialises a layer's activations in backward: tag them apart. */
  recomputing = false;

  alloc(shape: readonly number[], dtype: DType, kind: Kind, name: string): VT {
    if (kind === 'activation' && this.recomputing) kind = 'recomputed';
    const t = new VT([...shape], sizeClass(storageBytes(shape, dtype)), kind, this.group, this.layer, name, dtype);
    this.set.add(t);
    this.live += t.bytes;
    if (!this.largest || t.bytes > this.largest.bytes) this.largest = t;
    if (this.live > this.peak) {
      this.peak = this.live;
      this.peakPhase = this.phase;
      this.peakSet = [...this.set];
    }
    if (this.phase === 'backward' && this.live > this.bwPeak) {
      this.bwPeak = this.live;
      this.bwPeakSet = [...this.set];
    }
    return t;
  }

  /** An activation-dtype tensor (f16 when planned so). */
  actAlloc(shape: readonly number[], kind: Kind, name: string): VT {
    return this.alloc(shape, this.act, kind, name);
  }

  /** Tensor.dispose(). */
  free(t: VT): void {
    if (!t.alive) return;
    t.alive = false;
    this.set.delete(t);
    this.live -= t.bytes;
  }

  /** A kernel-private scratch buffer, disposed right after its dispatch (still counts at the peak). */
  scratch(shape: readonly number[], name: string): void {
    this.free(this.alloc(shape, 'f32', 'temp', name));
  }

  liveTensors(): VT[] {
    return [...this.set];
  }
}

function retain(t: VT): VT {
  t.refs++;
  return t;
}

class VVar {
  grad: VT | null = null;
  creator: VNode | null = null;
  constructor(
    readonly data: VT,
    readonly requiresGrad: boolean,
  ) {
    retain(data);
  }
  get isLeaf(): boolean {
    return this.creator === null;
  }
}

type VBackward = (gOut: readonly (VT | null)[], saved: readonly VT[], needsGrad: (i: number) => boolean) => (VT | null)[];

interface VNode {
  inputs: readonly VVar[];
  outputs: VVar[];
  saved: VT[];
  backward: VBackward;
  done: boolean;
  group: Group;
  layer: number;
}

/** The replay: memory accounting plus the tape's rules. */
class Replay {
  private nodes: VNode[] = [];
  private owned: VVar[] = [];
  private kept = new Set<VVar>();
  private released = false;

  constructor(readonly mem: Mem) {}

  release(t: VT): void {
    if (t.refs <= 1) {
      t.refs = 0;
      this.mem.free(t);
    } else t.refs--;
  }

  keep(v: VVar): VVar {
    this.kept.add(v);
    return v;
  }

  adopt(v: VVar): VVar {
    this.owned.push(v);
    return v;
  }

  record(inputs: readonly VVar[], outputs: readonly VT[], saved: readonly VT[], backward: VBackward, temps: readonly VT[] = []): VVar[] {
    const needs = inputs.some((v) => v.requiresGrad);
    if (!needs) for (const t of temps) this.mem.free(t);
    const vars = outputs.map((t) => new VVar(t, needs));
    this.owned.push(...vars);
    if (needs) {
      const node: VNode = { inputs, outputs: vars, saved: [...saved, ...temps].map(retain), backward, done: false, group: this.mem.group, layer: this.mem.layer };
      for (const v of vars) v.creator = node;
      this.nodes.push(node);
    }
    return vars;
  }

  /** graph.backward, generalised to several roots (recomputation seeds a layer's outputs). */
  backward(seeds: readonly (readonly [VVar, VT])[], onReleased?: () => void): void {
    this.released = true;
    for (const v of this.owned) if (!this.kept.has(v)) this.release(v.data);
    onReleased?.();
    const grads = new Map<VVar, VT>();
    for (const [v, s] of seeds) grads.set(v, retain(s));
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      const gOut = node.outputs.map((v) => grads.get(v) ?? null);
      if (gOut.every((g) => g === null)) {
        this.finish(node);
        continue;
      }
      const prevGroup = this.mem.group;
      const prevLayer = this.mem.layer;
      this.mem.group = node.group;
      this.mem.layer = node.layer;
      const gIn = node.backward(gOut, node.saved, (k) => node.inputs[k]!.requiresGrad);
      this.mem.group = prevGroup;
      this.mem.layer = prevLayer;
      const owned = gIn.map((g) => (g ? retain(g) : null));
      for (const v of node.outputs) {
        const g = grads.get(v);
        if (g) {
          this.release(g);
          grads.delete(v);
        }
      }
      this.finish(node);
      node.inputs.forEach((input, k) => {
        const g = owned[k];
        if (!g) return;
        if (!input.requiresGrad) return this.release(g);
        if (input.isLeaf) input.grad = this.accumulate(input.grad, g);
        else grads.set(input, this.accumulate(grads.get(input) ?? null, g));
      });
    }
    for (const g of grads.values()) this.release(g);
    this.nodes = [];
  }

  private finish(node: VNode): void {
    if (node.done) return;
    node.done = true;
    for (const t of node.saved) this.release(t);
    node.saved = [];
  }

  /** Same rule as graph.ts: in place unless the running sum is shared (aliased pass-through). */
  private accumulate(prev: VT | null, g: VT): VT {
    if (!prev) return g;
    if (prev.refs > 1 || prev === g) {
      // add(prev, g) keeps prev's dtype.
      const sum = this.mem.alloc(prev.shape, prev.dtype, prev.kind === 'grad' ? 'weightGrad' : 'actGrad', 'gradient sum');
      this.release(prev);
      this.release(g);
      return retain(sum);
    }
    this.release(g);
    return prev;
  }

  /** graph.dispose(): used by recomputation's sub-tapes, keeping `survivors`. */
  disposeExcept(survivors: ReadonlySet<VT>): void {
    for (const n of this.nodes) this.finish(n);
    this.nodes = [];
    if (!this.released) for (const v of this.owned) if (!survivors.has(v.data)) this.release(v.data);
    this.owned = [];
  }
}

// ---------------------------------------------------------------------------------------------
// Kernel-wrapper allocation rules (src/kernels/*.ts).

/** reducePass of src/kernels/reduce.ts: partials per pass, freed once the next pass is recorded. */
function sumAxis(mem: Mem, kind: Kind, view: { outer: number; n: number; inner: number }, outShape: readonly number[], name: string): VT {
  const { outer, n, inner } = view;
  const ti = inner >= 64 ? 64 : inner >= 16 ? 16 : inner >= 4 ? 4 : 1;
  const tn = 256 / ti;
  const base = outer * Math.ceil(inner / ti);
  let chunkLen = Math.max(n, 1);
  if (base < 256) chunkLen = Math.max(tn * 16, Math.ceil(n / Math.ceil(256 / base)));
  const chunks = Math.max(1, Math.ceil(n / chunkLen));
  if (chunks === 1) return mem.alloc(outShape, 'f32', kind, name);
  const part = mem.alloc([outer, chunks, inner], 'f32', 'temp', 'sum partials');
  const out = sumAxis(mem, kind, { outer, n: chunks, inner }, outShape, name);
  mem.free(part);
  return out;
}

const rows = (t: VT): number => t.size / t.shape[t.shape.length - 1]!;

/** Autograd ops of src/autograd/ops, replayed. */
class Ops {
  constructor(
    readonly r: Replay,
    readonly mem: Mem,
  ) {}

  /** Output in `outDtype` (default: x's dtype, as the linear op); dx in x's dtype, dW f32. */
  linear(x: VVar, w: VVar, b: VVar | null, name: string, outDtype: DType = x.data.dtype === 'f16' ? 'f16' : 'f32'): VVar {
    const m = this.mem;
    const out = w.data.shape[0]!;
    const y = m.alloc([rows(x.data), out], outDtype, 'activation', name);
    const inputs = b ? [x, w, b] : [x, w];
    return this.r.record(inputs, [y], [x.data, w.data], (g, saved, needs) => {
      const dy = g[0]!;
      const da = needs(0) ? m.alloc(saved[0]!.shape, saved[0]!.dtype, 'actGrad', `d ${name} input`) : null;
      const dw = needs(1) ? m.alloc(saved[1]!.shape, 'f32', 'weightGrad', `d ${name} weight`) : null;
      const db = b && needs(2) ? sumAxis(m, 'weightGrad', { outer: 1, n: rows(dy), inner: out }, [out], `d ${name} bias`) : null;
      return [da, dw, ...(b ? [db] : [])];
    })[0]!;
  }

  rmsnorm(x: VVar, w: VVar, name: string): VVar {
    const m = this.mem;
    const y = m.actAlloc(x.data.shape, 'activation', name);
    const rstd = m.alloc([rows(x.data)], 'f32', 'activation', `${name} rstd`);
    return this.r.record(
      [x, w],
      [y],
      [x.data, w.data],
      (g, saved) => {
        const xs = saved[0]!;
        const n = rows(xs);
        const d = xs.shape[xs.shape.length - 1]!;
        const dx = m.actAlloc(xs.shape, 'actGrad', `d ${name}`);
        const chunk = Math.max(32, Math.ceil(n / 256));
        const part = m.alloc([Math.max(1, Math.ceil(n / chunk)), d], 'f32', 'temp', 'rmsnorm dw partials');
        const dw = m.alloc([d], 'f32', 'weightGrad', `d ${name} weight`);
        m.free(part);
        return [dx, dw];
      },
      [rstd],
    )[0]!;
  }

  rope(x: VVar, name: string): VVar {
    const m = this.mem;
    const y = m.actAlloc(x.data.shape, 'activation', name);
    const shape = x.data.shape;
    return this.r.record([x], [y], [], () => [m.actAlloc(shape, 'actGrad', `d ${name}`)])[0]!;
  }

  attention(q: VVar, k: VVar, v: VVar, lseShape: readonly number[]): VVar {
    const m = this.mem;
    const o = m.actAlloc(q.data.shape, 'activation', 'attn o');
    const lse = m.alloc(lseShape, 'f32', 'activation', 'attn lse');
    return this.r.record(
      [q, k, v],
      [o],
      [q.data, k.data, v.data, o],
      (_g, saved) => {
        const dq = m.actAlloc(saved[0]!.shape, 'actGrad', 'd attn q');
        const D = m.alloc(lseShape, 'f32', 'temp', 'attn D');
        const dk = m.actAlloc(saved[1]!.shape, 'actGrad', 'd attn k');
        const dv = m.actAlloc(saved[2]!.shape, 'actGrad', 'd attn v');
        m.free(D);
        return [dq, dk, dv];
      },
      [lse],
    )[0]!;
  }

  /** Same-shape add: the backward passes dy through to both inputs (aliased). */
  add(a: VVar, b: VVar, name: string): VVar {
    const y = this.mem.actAlloc(a.data.shape, 'activation', name);
    return this.r.record([a, b], [y], [], (g, _s, needs) => [needs(0) ? g[0]! : null, needs(1) ? g[0]! : null])[0]!;
  }

  mulColumn(x: VVar, s: VVar, name: string): VVar {
    const m = this.mem;
    const y = m.actAlloc(x.data.shape, 'activation', name);
    return this.r.record([x, s], [y], [x.data, s.data], (g, saved) => {
      const [n, d] = saved[0]!.shape as [number, number];
      const da = m.actAlloc([n, d], 'actGrad', `d ${name} x`);
      const db = sumAxis(m, 'actGrad', { outer: n, n: d, inner: 1 }, [n, 1], `d ${name} scale`);
      return [da, db];
    })[0]!;
  }

  sigmoid(x: VVar, name: string): VVar {
    const m = this.mem;
    const y = m.actAlloc(x.data.shape, 'activation', name);
    return this.r.record([x], [y], [y], (_g, saved) => [m.actAlloc(saved[0]!.shape, 'actGrad', `d ${name}`)])[0]!;
  }

  /** swigluFused: h [R, H] from gu [R, 2H]; saves gu, backward writes one [R, 2H] gradient. */
  swigluFused(gu: VVar, name: string): VVar {
    const m = this.mem;
    const [r, h2] = gu.data.shape as [number, number];
    const h = m.actAlloc([r, h2 / 2], 'activation', name);
    return this.r.record([gu], [h], [gu.data], (_g, saved) => [m.actAlloc(saved[0]!.shape, 'actGrad', `d ${name}`)])[0]!;
  }

  swiglu(g: VVar, u: VVar, name: string): VVar {
    const m = this.mem;
    const h = m.actAlloc(g.data.shape, 'activation', name);
    return this.r.record([g, u], [h], [g.data, u.data], (_g, saved) => [
      m.actAlloc(saved[0]!.shape, 'actGrad', `d ${name} gate`),
      m.actAlloc(saved[1]!.shape, 'actGrad', `d ${name} up`),
    ])[0]!;
  }

  /** Router: probs/weights stay f32 (router softmax in f32 even with f16 activations). */
  router(logits: VVar, k: number): { probs: VVar; weights: VVar; idx: VVar } {
    const m = this.mem;
    const [n, e] = logits.data.shape as [number, number];
    const probs = m.alloc([n, e], 'f32', 'activation', 'router probs');
    const idx = m.alloc([n, k], 'u32', 'activation', 'router top-k idx');
    const weights = m.alloc([n, k], 'f32', 'activation', 'router top-k weights');
    const [p, w, i] = this.r.record([logits], [probs, weights, idx], [probs, idx], (g) => {
      const dW = g[1] ?? m.alloc([n, k], 'f32', 'temp', 'router zero d_weights');
      const dLogits = m.alloc([n, e], 'f32', 'actGrad', 'd router logits');
      if (!g[1]) m.free(dW);
      return [dLogits];
    });
    return { probs: p!, weights: w!, idx: i! };
  }

  /** buildDispatch + constants(): the plan tensors belong to the tape, saved by the ops that read them. */
  dispatch(idx: VVar, e: number): VT[] {
    const m = this.mem;
    const [n, k] = idx.data.shape as [number, number];
    // routeAndDispatch: the router's per-chunk expert counts, freed once the plan is placed.
    const chunkBase = m.alloc(chunkCountsShape(n, e, fusedChunkTokens(n, e, k)), 'u32', 'temp', 'router chunk counts');
    const plan = [
      m.alloc([e], 'u32', 'activation', 'dispatch counts'),
      m.alloc([e + 1], 'u32', 'activation', 'dispatch offsets'),
      m.alloc([1], 'u32', 'activation', 'dispatch dropped'),
      m.alloc([n * k], 'u32', 'activation', 'dispatch pos'),
      m.alloc([n * k], 'u32', 'activation', 'dispatch src'),
      m.alloc([n * k], 'u32', 'activation', 'dispatch rowPair'),
    ];
    m.free(chunkBase);
    this.r.record([], plan, [], () => []);
    return plan;
  }

  gather(x: VVar, plan: readonly VT[], k: number): VVar {
    const m = this.mem;
    const [n, d] = x.data.shape as [number, number];
    const xs = m.actAlloc([n * k, d], 'activation', 'expert inputs xs');
    return this.r.record([x], [xs], plan, () => [m.actAlloc([n, d], 'actGrad', 'd gather')])[0]!;
  }

  /** Grouped expert matmul with stacked weights [E, out, in]. */
  grouped(xs: VVar, w: VVar, plan: readonly VT[], name: string): VVar {
    const m = this.mem;
    const y = m.actAlloc([xs.data.shape[0]!, w.data.shape[1]!], 'activation', name);
    return this.r.record([xs, w], [y], [xs.data, w.data, ...plan], (_g, saved, needs) => [
      needs(0) ? m.actAlloc(saved[0]!.shape, 'actGrad', `d ${name} input`) : null,
      needs(1) ? m.alloc(saved[1]!.shape, 'f32', 'weightGrad', `d ${name} weight`) : null,
    ])[0]!;
  }

  combine(ys: VVar, weights: VVar, plan: readonly VT[], n: number): VVar {
    const m = this.mem;
    const d = ys.data.shape[1]!;
    const y = m.actAlloc([n, d], 'activation', 'expert combine');
    return this.r.record([ys, weights], [y], [ys.data, weights.data, ...plan], (_g, saved) => [
      m.actAlloc(saved[0]!.shape, 'actGrad', 'd expert outputs'),
      m.alloc(saved[1]!.shape, 'f32', 'actGrad', 'd router weights'),
    ])[0]!;
  }

  meanPool(h: VVar, batch: number, seqLen: number): VVar {
    const m = this.mem;
    const d = h.data.shape[1]!;
    const y = sumAxis(m, 'activation', { outer: batch, n: seqLen, inner: d }, [batch, d], 'mean pool');
    // meanPoolBackward writes f32 whatever h's dtype.
    return this.r.record([h], [y], [], () => [m.alloc([batch * seqLen, d], 'f32', 'actGrad', 'd mean pool')])[0]!;
  }

  // ---- losses (scalars are [1] f32 tensors; they cost a 256 B buffer each)

  huber(pred: VVar, target: VT, mask: VT, name: string): VVar {
    const m = this.mem;
    const n = pred.data.size;
    const groups = Math.min(Math.ceil(n / 256), 32);
    const partial = m.alloc([Math.max(groups * 256, 1), 2], 'f32', 'temp', 'huber partials');
    const loss = m.alloc([1], 'f32', 'activation', `${name} loss`);
    const count = m.alloc([1], 'f32', 'activation', `${name} count`);
    m.free(partial);
    return this.r.record([pred], [loss], [pred.data, target, mask], (_g, saved) => [m.alloc(saved[0]!.shape, 'f32', 'actGrad', `d ${name}`)], [count])[0]!;
  }

  crossEntropy(logits: VVar, labels: VT): VVar {
    const m = this.mem;
    const n = logits.data.shape[0]!;
    const rowLoss = m.alloc([Math.max(n, 1), 2], 'f32', 'temp', 'ce row losses');
    const stats = m.alloc([n, 2], 'f32', 'activation', 'ce stats');
    const loss = m.alloc([1], 'f32', 'activation', 'ce loss');
    const count = m.alloc([1], 'f32', 'activation', 'ce count');
    m.free(rowLoss);
    return this.r.record([logits], [loss], [logits.data, labels], (_g, saved) => [m.alloc(saved[0]!.shape, 'f32', 'actGrad', 'd logits')], [stats, count])[0]!;
  }

  weightedSum(terms: readonly VVar[], name: string): VVar {
    const m = this.mem;
    const out = m.alloc([1], 'f32', 'activation', name);
    return this.r.record(terms, [out], [], (_g, _s, needs) => terms.map((_, i) => (needs(i) ? m.alloc([1], 'f32', 'actGrad', `d ${name}`) : null)))[0]!;
  }

  pooledAux(probs: readonly VVar[], e: number): VVar {
    const m = this.mem;
    m.scratch([probs.length, e, 3], 'aux pooled stats');
    const loss = m.alloc([1], 'f32', 'activation', 'aux loss');
    // finalize allocates loss then coef; the stats buffer is disposed after both.
    const coef = m.alloc([e], 'f32', 'activation', 'aux coef');
    const shapes = probs.map((p) => p.data.shape);
    return this.r.record(probs, [loss], [], () => shapes.map((s) => m.alloc(s, 'f32', 'actGrad', 'd router probs (aux)')), [coef])[0]!;
  }

  switchAux(probs: readonly VVar[], e: number): VVar {
    const m = this.mem;
    const per = probs.map(() => {
      const stats = m.alloc([e, 3], 'f32', 'temp', 'switch stats');
      const loss = m.alloc([1], 'f32', 'temp', 'switch layer loss');
      const coef = m.alloc([e], 'f32', 'activation', 'switch coef');
      m.free(stats);
      return { loss, coef };
    });
    const out = m.alloc([1], 'f32', 'activation', 'aux loss');
    for (const p of per) m.free(p.loss);
    const shapes = probs.map((p) => p.data.shape);
    return this.r.record(
      probs,
      [out],
      [],
      () => {
        const gl = m.alloc([1], 'f32', 'temp', 'switch scaled grad');
        const grads = shapes.map((s) => m.alloc(s, 'f32', 'actGrad', 'd router probs (aux)'));
        m.free(gl);
        return grads;
      },
      per.map((p) => p.coef),
    )[0]!;
  }

  zLoss(logits: VVar): VVar {
    const m = this.mem;
    const lse = m.alloc([logits.data.shape[0]!], 'f32', 'activation', 'z-loss lse');
    const loss = m.alloc([1], 'f32', 'activation', 'z-loss');
    return this.r.record([logits], [loss], [logits.data], (_g, saved) => [m.alloc(saved[0]!.shape, 'f32', 'actGrad', 'd router logits (z)')], [lse])[0]!;
  }
}

// ---------------------------------------------------------------------------------------------
// The model, replayed (src/model/time-moe.ts, layers/*.ts, losses.ts).

interface LayerParams {
  inNorm: VVar;
  q: VVar;
  qb: VVar;
  k: VVar;
  kb: VVar;
  v: VVar;
  vb: VVar;
  o: VVar;
  postNorm: VVar;
  router: VVar;
  /** Fused gate_proj + up_proj of every expert, [E, 2H, d]. */
  gateUp: VVar;
  down: VVar;
  /** Fused shared-expert gate_proj + up_proj, [2S, d]. */
  sGateUp: VVar | null;
  sDown: VVar | null;
  sScale: VVar | null;
}

interface ModelParams {
  embGate: VVar;
  embValue: VVar;
  layers: LayerParams[];
  norm: VVar;
  heads: VVar[];
  classifier: { w: VVar; b: VVar } | null;
  all: VVar[];
}

/** Parameter shapes in the model's creation order (names as in the state dict). */
export function parameterShapes(m: ModelConfig): { name: string; shape: number[] }[] {
  const d = m.hidden;
  const out: { name: string; shape: number[] }[] = [
    { name: 'model.embed_layer.gate_layer.weight', shape: [d, 1] },
    { name: 'model.embed_layer.emb_layer.weight', shape: [d, 1] },
  ];
  for (let i = 0; i < m.layers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [d] });
    for (const x of ['q', 'k', 'v']) out.push({ name: `${p}.self_attn.${x}_proj.weight`, shape: [d, d] }, { name: `${p}.self_attn.${x}_proj.bias`, shape: [d] });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [d, d] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d] });
    out.push({ name: `${p}.ffn_layer.gate.weight`, shape: [m.experts, d] });
    out.push({ name: `${p}.ffn_layer.experts.{j}.{part}.weight`, shape: [m.experts, 2 * m.moeIntermediate, d] });
    out.push({ name: `${p}.ffn_layer.experts.{j}.down_proj.weight`, shape: [m.experts, d, m.moeIntermediate] });
    if (m.sharedIntermediate > 0) {
      const s = m.sharedIntermediate;
      out.push({ name: `${p}.ffn_layer.shared_expert.{part}.weight`, shape: [2 * s, d] });
      out.push({ name: `${p}.ffn_layer.shared_expert.down_proj.weight`, shape: [d, s] });
      out.push({ name: `${p}.ffn_layer.shared_expert_gate.weight`, shape: [1, d] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [d] });
  if (m.task === 'classify') {
    const c = m.numClasses ?? 2;
    out.push({ name: 'classifier.weight', shape: [c, d] }, { name: 'classifier.bias', shape: [c] });
  } else m.horizons.forEach((h, n) => out.push({ name: `lm_heads.${n}.out_layer.weight`, shape: [h, d] }));
  return out;
}

function makeParams(mem: Mem, cfg: ModelConfig, gradients: 'resident' | 'freed'): ModelParams {
  const shapes = parameterShapes(cfg);
  let at = 0;
  const all: VVar[] = [];
  const next = (): VVar => {
    const s = shapes[at++]!;
    const v = new VVar(mem.alloc(s.shape, 'f32', 'param', s.name), true);
    // Steady state: AdamW holds m, v; with resident gradients the gradient buffer persists between
    // steps (zeroGrad fills it); freed gradients appear during backward as weight-gradient tensors.
    if (gradients === 'resident') v.grad = retain(mem.alloc(s.shape, 'f32', 'grad', `${s.name} grad`));
    mem.alloc(s.shape, 'f32', 'optimizer', `${s.name} m`);
    mem.alloc(s.shape, 'f32', 'optimizer', `${s.name} v`);
    all.push(v);
    return v;
  };
  const embGate = next();
  const embValue = next();
  const layers: LayerParams[] = [];
  for (let i = 0; i < cfg.layers; i++) {
    const inNorm = next();
    const [q, qb, k, kb, v, vb] = [next(), next(), next(), next(), next(), next()];
    const o = next();
    const postNorm = next();
    const router = next();
    const [gateUp, down] = [next(), next()];
    const shared = cfg.sharedIntermediate > 0;
    const [sGateUp, sDown, sScale] = shared ? [next(), next(), next()] : [null, null, null];
    layers.push({ inNorm, q, qb, k, kb, v, vb, o, postNorm, router, gateUp, down, sGateUp, sDown, sScale });
  }
  const norm = next();
  let heads: VVar[] = [];
  let classifier: ModelParams['classifier'] = null;
  if (cfg.task === 'classify') classifier = { w: next(), b: next() };
  else heads = cfg.horizons.map(() => next());
  return { embGate, embValue, layers, norm, heads, classifier, all };
}

interface LayerOut {
  h: VVar;
  logits: VVar;
  probs: VVar;
  idx: VVar;
}

function decoderLayer(ops: Ops, cfg: ModelConfig, p: LayerParams, h: VVar, s: { batch: number; seqLen: number }): LayerOut {
  const m = ops.mem;
  const n = s.batch * s.seqLen;
  m.group = 'norm';
  const y1 = ops.rmsnorm(h, p.inNorm, 'input norm');
  m.group = 'attention';
  const q = ops.rope(ops.linear(y1, p.q, p.qb, 'attn q (pre-RoPE)'), 'attn q');
  const k = ops.rope(ops.linear(y1, p.k, p.kb, 'attn k (pre-RoPE)'), 'attn k');
  const v = ops.linear(y1, p.v, p.vb, 'attn v');
  const o = ops.attention(q, k, v, [s.batch, cfg.heads, s.seqLen]);
  const ao = ops.linear(o, p.o, null, 'attn o_proj out');
  m.group = 'residual';
  const a = ops.add(h, ao, 'residual after attention');
  m.group = 'norm';
  const y2 = ops.rmsnorm(a, p.postNorm, 'post-attention norm');
  m.group = 'router';
  const logits = ops.linear(y2, p.router, null, 'router logits', 'f32');
  const r = ops.router(logits, cfg.topK);
  m.group = 'dispatch';
  const plan = ops.dispatch(r.idx, cfg.experts);
  m.group = 'experts';
  const xs = ops.gather(y2, plan, cfg.topK);
  const hh = ops.swigluFused(ops.grouped(xs, p.gateUp, plan, 'expert gate+up'), 'expert hidden');
  const ys = ops.grouped(hh, p.down, plan, 'expert outputs');
  let out = ops.combine(ys, r.weights, plan, n);
  if (p.sGateUp && p.sDown && p.sScale) {
    m.group = 'shared';
    const sh = ops.swigluFused(ops.linear(y2, p.sGateUp, null, 'shared gate+up'), 'shared hidden');
    const sd = ops.linear(sh, p.sDown, null, 'shared out');
    const sg = ops.sigmoid(ops.linear(y2, p.sScale, null, 'shared gate logit'), 'shared gate sigmoid');
    out = ops.add(out, ops.mulColumn(sd, sg, 'shared scaled'), 'moe out');
  }
  m.group = 'residual';
  return { h: ops.add(a, out, 'residual after moe'), logits, probs: r.probs, idx: r.idx };
}

/**
 * Activation checkpointing (planned): the layer runs on a sub-tape that is dropped right away,
 * leaving one node that saves only the input; its backward replays the layer and backprops it.
 */
function checkpointedLayer(ops: Ops, cfg: ModelConfig, p: LayerParams, h: VVar, s: { batch: number; seqLen: number }): LayerOut {
  const outer = ops.r;
  const m = ops.mem;
  const layer = m.layer;
  const run = (input: VVar): { sub: Replay; out: LayerOut } => {
    const sub = new Replay(m);
    const out = decoderLayer(new Ops(sub, m), cfg, p, input, s);
    return { sub, out };
  };
  const first = run(h);
  const outs = [first.out.h, first.out.logits, first.out.probs, first.out.idx];
  first.sub.disposeExcept(new Set(outs.map((v) => v.data)));
  m.group = 'residual';
  const vars = outer.record([h], outs.map((v) => v.data), [h.data], (g, saved) => {
    m.recomputing = true;
    m.layer = layer;
    const input = new VVar(saved[0]!, true);
    const again = run(input);
    m.recomputing = false;
    const roots = [again.out.h, again.out.logits, again.out.probs];
    again.sub.backward(roots.flatMap((v, i) => (g[i] ? [[v, g[i]!] as const] : [])));
    again.sub.disposeExcept(new Set());
    const dx = input.grad;
    // Hand the gradient to the caller's tape with no reference of ours (as a backward returns it).
    if (dx) dx.refs--;
    outer.release(input.data); // the replay input's own reference; the node's saved one goes in finish()
    return [dx];
  });
  // The outer vars now hold the outputs; drop the sub-tape's references.
  for (const v of outs) outer.release(v.data);
  return { h: vars[0]!, logits: vars[1]!, probs: vars[2]!, idx: vars[3]! };
}

interface StepResult {
  mem: Mem;
  forwardEnd: VT[];
  inputs: VT[];
}

function replayStep(cfg: ModelConfig, run: Required<RunOptions>): StepResult {
  const mem = new Mem(run.dtype);
  const r = new Replay(mem);
  const ops = new Ops(r, mem);
  const B = run.microBatch;
  const T = run.contextLength;
  const N = B * T;
  const s = { batch: B, seqLen: T };
  const params = makeParams(mem, cfg, run.gradients);

  // Inputs, as the step uploads them: RoPE table (cached per runtime), series, labels, loss mask, targets.
  mem.group = 'input';
  const hd = cfg.hidden / cfg.heads;
  const inputs: VT[] = [];
  const input = (shape: number[], dtype: DType, name: string): VT => {
    const t = mem.alloc(shape, dtype, 'input', name);
    inputs.push(t);
    return t;
  };
  input([Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(T, 1)))), hd / 2, 2], 'f32', 'RoPE cos/sin table');
  const x = r.adopt(new VVar(input([N, 1], 'f32', 'series values x'), false));
  let targets: { target: VT; mask: VT }[] = [];
  let labels: VT | null = null;
  if (cfg.task === 'classify') labels = input([B], 'i32', 'class labels');
  else {
    input([B, T], 'f32', 'labels');
    input([B, T], 'f32', 'loss mask');
    targets = cfg.horizons.map((h) => ({ target: input([B, T, h], 'f32', `horizon ${h} target`), mask: input([B, T, h], 'f32', `horizon ${h} mask`) }));
  }

  mem.phase = 'forward';
  mem.group = 'embedding';
  let h = ops.swiglu(ops.linear(x, params.embGate, null, 'embedding gate', mem.act), ops.linear(x, params.embValue, null, 'embedding value', mem.act), 'embedding out');
  const routing: LayerOut[] = [];
  params.layers.forEach((p, i) => {
    mem.layer = i;
    const out = run.recompute ? checkpointedLayer(ops, cfg, p, h, s) : decoderLayer(ops, cfg, p, h, s);
    h = out.h;
    routing.push(out);
  });
  mem.layer = -1;
  mem.group = 'head';
  const yf = ops.rmsnorm(h, params.norm, 'final norm');
  let total: VVar;
  mem.group = 'loss';
  const aux = (): VVar =>
    run.auxConvention === 'pooled'
      ? ops.pooledAux(
          routing.map((l) => l.probs),
          cfg.experts,
        )
      : ops.switchAux(
          routing.map((l) => l.probs),
          cfg.experts,
        );
  const zTerms = (): VVar =>
    ops.weightedSum(
      routing.map((l) => ops.zLoss(l.logits)),
      'z-loss mean',
    );
  if (params.classifier && labels) {
    mem.group = 'head';
    const logits = ops.linear(ops.meanPool(yf, B, T), params.classifier.w, params.classifier.b, 'class logits');
    mem.group = 'loss';
    const main = ops.crossEntropy(logits, labels);
    const a = aux();
    total = ops.weightedSum([main, a, zTerms()], 'total loss');
  } else {
    mem.group = 'head';
    const preds = params.heads.map((w, i) => ops.linear(yf, w, null, `head ${cfg.horizons[i]} prediction`, 'f32'));
    mem.group = 'loss';
    const heads = preds.map((p, i) => ops.huber(p, targets[i]!.target, targets[i]!.mask, `huber h${cfg.horizons[i]}`));
    const main = ops.weightedSum(heads, 'main loss');
    const a = aux();
    total = ops.weightedSum([main, a, zTerms()], 'total loss');
  }
  r.keep(total);

  // The seed is uploaded as backward is called; the tape then drops its hold on intermediates.
  mem.group = 'input';
  const seed = mem.alloc([1], 'f32', 'input', 'loss seed');
  const forwardEnd = mem.liveTensors();
  mem.phase = 'backward';
  r.backward([[total, seed]], () => {
    for (const t of mem.liveTensors()) t.saved = true;
  });
  return { mem, forwardEnd, inputs };
}

// ---------------------------------------------------------------------------------------------
// The plan.

const ACTIVATION_KINDS: ReadonlySet<Kind> = new Set(['activation']);

function categoryOf(t: VT): Category {
  switch (t.kind) {
    case 'param':
      return 'parameters';
    case 'grad':
      return 'gradients';
    case 'optimizer':
      return 'optimizer';
    case 'input':
      return 'inputs';
    case 'activation':
      return t.saved ? 'savedActivations' : 'heldActivations';
    case 'recomputed':
      return 'recomputedActivations';
    case 'actGrad':
      return 'activationGradients';
    case 'weightGrad':
      return 'weightGradientTemps';
    case 'temp':
      return 'kernelTemps';
  }
}

function breakdown(ts: readonly VT[]): Record<Category, number> {
  const out = Object.fromEntries(Object.keys(CATEGORY_LABELS).map((k) => [k, 0])) as Record<Category, number>;
  for (const t of ts) out[categoryOf(t)] += t.bytes;
  return out;
}

function item(t: VT): TensorItem {
  return { group: t.group, name: t.name, bytes: t.bytes, saved: t.saved, layer: t.layer };
}

/** Items merged by (group, name, saved): several same-named tensors (e.g. 3 dispatch u32 rows) add up. */
function block(ts: readonly VT[]): ActivationBlock {
  const map = new Map<string, TensorItem>();
  for (const t of ts) {
    const key = `${t.group}|${t.name}|${t.saved}`;
    const prev = map.get(key);
    if (prev) prev.bytes += t.bytes;
    else map.set(key, item(t));
  }
  const items = [...map.values()];
  const savedBytes = items.filter((i) => i.saved).reduce((a, i) => a + i.bytes, 0);
  const bytes = items.reduce((a, i) => a + i.bytes, 0);
  return { items, savedBytes, heldBytes: bytes - savedBytes, bytes };
}

function normalise(run: RunOptions): Required<RunOptions> {
  for (const [k, v] of [
    ['microBatch', run.microBatch],
    ['contextLength', run.contextLength],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`planMemory: ${k} must be a positive integer, got ${v}`);
  return {
    microBatch: run.microBatch,
    contextLength: run.contextLength,
    dtype: run.dtype,
    optimizer: run.optimizer,
    recompute: run.recompute,
    budgetBytes: run.budgetBytes ?? DEFAULT_BUDGET_BYTES,
    reserveBytes: run.reserveBytes ?? DEFAULT_RESERVE_BYTES,
    auxConvention: run.auxConvention ?? 'pooled',
    gradients: run.gradients ?? 'resident',
  };
}

/** Peak bytes only (used by the searches behind the suggestions). */
export function planPeak(model: ModelConfig, run: RunOptions): number {
  return replayStep(model, normalise(run)).mem.peak;
}

function usable(run: Required<RunOptions>): number {
  return run.budgetBytes - run.reserveBytes;
}

/** Largest v in [lo, hi] with ok(v), assuming ok is monotone (true then false); lo - 1 if none. */
function largest(lo: number, hi: number, ok: (v: number) => boolean): number {
  if (hi < lo || !ok(lo)) return lo - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

const fmtGiB = (b: number): string => `${(b / GIB).toFixed(1)} GiB`;

function maxMicroBatch(model: ModelConfig, run: Required<RunOptions>): number {
  const fitsAt = (mb: number) => planPeak(model, { ...run, microBatch: mb }) <= usable(run);
  if (!fitsAt(1)) return 0;
  let hi = 1;
  while (hi < 1 << 16 && fitsAt(hi * 2)) hi *= 2;
  return largest(hi, Math.min(hi * 2 - 1, 1 << 16), fitsAt);
}

function suggest(model: ModelConfig, run: Required<RunOptions>, peak: number, maxMb: number): Suggestion[] {
  const budget = usable(run);
  if (peak <= budget) return [];
  const out: Suggestion[] = [];
  const peakWith = (o: Partial<RunOptions>) => planPeak(model, { ...run, ...o });
  if (maxMb >= 1) {
    const p = peakWith({ microBatch: maxMb });
    out.push({ knob: 'microBatch', from: String(run.microBatch), to: String(maxMb), apply: { microBatch: maxMb }, peakBytes: p, text: `micro-batch ${run.microBatch} -> ${maxMb} fits (peak ${fmtGiB(p)})` });
  }
  // Context: the largest length that fits, kept a multiple of 64 where possible (kernel-friendly).
  const step = run.contextLength > 64 ? 64 : 1;
  const best = largest(1, Math.floor((run.contextLength - 1) / step), (u) => peakWith({ contextLength: u * step }) <= budget) * step;
  if (best >= 1) {
    const p = peakWith({ contextLength: best });
    out.push({ knob: 'contextLength', from: String(run.contextLength), to: String(best), apply: { contextLength: best }, peakBytes: p, text: `context length ${run.contextLength} -> ${best} fits (peak ${fmtGiB(p)})` });
  }
  if (!run.recompute) {
    const p = peakWith({ recompute: true });
    const mb = p <= budget ? run.microBatch : maxMicroBatch(model, { ...run, recompute: true });
    const text =
      p <= budget
        ? `recompute on fits (peak ${fmtGiB(p)}; planned, not in the engine yet)`
        : mb >= 1
          ? `recompute on (planned) + micro-batch ${run.microBatch} -> ${mb} fits (peak ${fmtGiB(peakWith({ recompute: true, microBatch: mb }))})`
          : `recompute on alone does not fit (peak ${fmtGiB(p)})`;
    out.push({ knob: 'recompute', from: 'off', to: 'on', apply: p <= budget || mb < 1 ? { recompute: true } : { recompute: true, microBatch: mb }, peakBytes: p <= budget ? p : mb >= 1 ? peakWith({ recompute: true, microBatch: mb }) : null, text });
  }
  if (run.dtype === 'f32') {
    const p = peakWith({ dtype: 'f16' });
    const mb = p <= budget ? run.microBatch : maxMicroBatch(model, { ...run, dtype: 'f16' });
    const text =
      p <= budget
        ? `f16 activations fit (peak ${fmtGiB(p)}; planned, most kernels are f32-only today)`
        : mb >= 1
          ? `f16 activations (planned) + micro-batch ${run.microBatch} -> ${mb} fits (peak ${fmtGiB(peakWith({ dtype: 'f16', microBatch: mb }))})`
          : `f16 activations alone do not fit (peak ${fmtGiB(p)})`;
    out.push({ knob: 'dtype', from: 'f32', to: 'f16', apply: p <= budget || mb < 1 ? { dtype: 'f16' } : { dtype: 'f16', microBatch: mb }, peakBytes: p <= budget ? p : mb >= 1 ? peakWith({ dtype: 'f16', microBatch: mb }) : null, text });
  }
  if (maxMb === 0 && out.every((s) => s.peakBytes === null)) {
    const fixed = planPeak(model, { ...run, microBatch: 1, contextLength: 1 });
    out.push({
      knob: 'none',
      from: '',
      to: '',
      apply: {},
      peakBytes: null,
      text: `does not fit at any batch or context: weights, gradients and AdamW state alone need ~${fmtGiB(fixed)} of ${fmtGiB(budget)} usable`,
    });
  }
  return out;
}

export function planMemory(model: ModelConfig, runIn: RunOptions): MemoryPlan {
  const run = normalise(runIn);
  const { mem, forwardEnd, inputs } = replayStep(model, run);
  const counts = countParameters(model);
  const shapes = parameterShapes(model);
  const count = shapes.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  const allocated = shapes.reduce((a, s) => a + sizeClass(storageBytes(s.shape, 'f32')), 0);

  const acts = forwardEnd.filter((t) => ACTIVATION_KINDS.has(t.kind) || t.kind === 'recomputed');
  const inLayer = (l: number) => acts.filter((t) => t.layer === l && t.group !== 'head' && t.group !== 'loss');
  const perLayer = block(inLayer(0));
  const layersBytes = acts.filter((t) => t.layer >= 0).reduce((a, t) => a + t.bytes, 0);
  const outside = acts.filter((t) => t.layer < 0);
  const by = (g: Group) => block(outside.filter((t) => t.group === g));

  const bwTransient = mem.bwPeakSet.filter((t) => t.kind === 'actGrad' || t.kind === 'weightGrad' || t.kind === 'temp' || t.kind === 'recomputed');
  const budget = usable(run);
  const maxMb = maxMicroBatch(model, run);
  const notes = [
    run.gradients === 'resident'
      ? 'Steady state: parameter gradients stay allocated between steps (zeroGrad fills them); AdamW m and v are resident.'
      : 'Steady state: parameter gradients are freed after each update (the Trainer does this) and rebuilt by the next backward; AdamW m and v are resident.',
    `Budget: ${fmtGiB(run.budgetBytes)} minus ${fmtGiB(run.reserveBytes)} reserved for the CUDA/Vulkan context and Dawn.`,
    'Sizes are pool bytes: every tensor rounded through sizeClass() as the buffer pool rounds it.',
    'Not planned: guard/metric buffers, staging (readback) buffers, and pool memory kept free for reuse (peakAllocatedBytes can exceed the live peak).',
  ];
  if (run.recompute) notes.push('Recompute (schedule.recompute): each decoder layer keeps only its input and outputs; its activations are rebuilt during backward (one extra forward per layer).');
  if (run.dtype === 'f16') notes.push('f16 activations (precision.activations): activations and their gradients are f16; router logits/softmax, norm and attention statistics, predictions and losses stay f32.');
  const big = mem.largest!;
  notes.push(`Largest single buffer: ${big.name} (${(big.bytes / MIB).toFixed(1)} MiB); it must fit the device's maxStorageBufferBindingSize (lavapipe: 128 MiB).`);
  if (model.capacityFactor === null) notes.push('Dropless routing: expert rows are exactly N*k whatever the balance.');

  return {
    model: { preset: model.preset, parameters: counts.total, activeParameters: counts.active, layers: model.layers },
    run,
    tokens: run.microBatch * run.contextLength,
    parameters: { count, tensors: shapes.length, bytes: count * 4, allocatedBytes: allocated },
    gradients: { bytes: count * 4, allocatedBytes: allocated },
    optimizer: { bytes: 2 * count * 4, allocatedBytes: 2 * allocated },
    inputs: { items: inputs.map(item), bytes: inputs.reduce((a, t) => a + t.bytes, 0) },
    activations: {
      perLayer,
      layers: model.layers,
      layersBytes,
      embedding: by('embedding'),
      head: by('head'),
      loss: by('loss'),
      savedBytes: acts.filter((t) => t.saved).reduce((a, t) => a + t.bytes, 0),
      forwardEndBytes: acts.reduce((a, t) => a + t.bytes, 0),
    },
    backward: {
      peakBytes: mem.bwPeak,
      transientBytes: bwTransient.reduce((a, t) => a + t.bytes, 0),
      largest: [...bwTransient]
        .sort((a, b) => b.bytes - a.bytes)
        .slice(0, 5)
        .map(item),
    },
    peak: { bytes: mem.peak, phase: mem.peakPhase === 'backward' ? 'backward' : 'forward', breakdown: breakdown(mem.peakSet) },
    totalBytes: mem.peak,
    budgetBytes: run.budgetBytes,
    budget: { totalBytes: run.budgetBytes, reserveBytes: run.reserveBytes, usableBytes: budget },
    fits: mem.peak <= budget,
    headroomBytes: budget - mem.peak,
    maxMicroBatch: maxMb,
    largestTensor: item(big),
    suggestions: suggest(model, run, mem.peak, maxMb),
    notes,
  };
}
