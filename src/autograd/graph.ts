/**
 * The tape. Ops record a Node per call while a Graph is active and grad mode is on; backward
 * walks the nodes in reverse creation order (a valid reverse topological order) and frees
 * each node's saved tensors and incoming gradients as soon as it has run.
 *
 * Ownership: every Var an op creates belongs to the active graph. `graph.dispose()` frees them
 * all; `backward()` drops the graph's own hold on intermediate values first, so an activation
 * lives exactly as long as some pending backward still needs it. Values the caller wants to read
 * after backward must be `keep()`-ed.
 */
import type { Tensor } from '../kernels/tensor.ts';
import { Node, Var, refCount, release, retain, type BackwardFn } from './variable.ts';
import { accumulateInto, addNew } from './accumulate.ts';

let active: Graph | null = null;

export function currentGraph(): Graph {
  if (!active) throw new Error('no active graph: wrap model code in graph.run(() => ...)');
  return active;
}

export class Graph {
  private nodes: Node[] = [];
  private owned: Var[] = [];
  private kept = new Set<Var>();
  private released = false;
  private seq = 0;

  constructor(readonly gradEnabled = true) {}

  /** Run `fn` with this graph active (ops record into it). */
  run<T>(fn: () => T): T {
    const prev = active;
    active = this;
    try {
      return fn();
    } finally {
      active = prev;
    }
  }

  /** Keep a value alive through backward (released at dispose). */
  keep(v: Var): Var {
    this.kept.add(v);
    return v;
  }

  /** Take ownership of a Var made outside an op (e.g. an uploaded input). */
  adopt(v: Var): Var {
    this.owned.push(v);
    return v;
  }

  /**
   * Record an op's outputs. `saved` (inputs' or outputs' tensors) and `temps` (tensors private
   * to the op, e.g. a norm's rstd; ownership passes to the graph) are kept until the node's
   * backward has run; when no gradient can flow nothing is kept and temps are freed at once.
   * The backward sees them as ctx.saved = [...saved, ...temps].
   */
  record(
    name: string,
    inputs: readonly Var[],
    outputs: readonly Tensor[],
    saved: readonly Tensor[],
    backward: BackwardFn,
    temps: readonly Tensor[] = [],
  ): Var[] {
    const needs = this.gradEnabled && inputs.some((v) => v.requiresGrad);
    if (!needs) for (const t of temps) t.dispose();
    // Kernel outputs arrive untracked; the Var takes the first reference.
    const vars = outputs.map((t) => new Var(t, needs, name));
    for (const v of vars) this.owned.push(v);
    if (needs) {
      const node = new Node(name, inputs, backward, [...saved, ...temps].map(retain), this.seq++);
      node.outputs = vars;
      vars.forEach((v, i) => {
        v.creator = node;
        v.outputIndex = i;
      });
      this.nodes.push(node);
    }
    return vars;
  }

  /**
   * Backpropagate from `root`. `seed` is the gradient of the root (same shape; consumed: the
   * graph frees it). Leaf gradients accumulate into `.grad` (for gradient accumulation).
   */
  backward(root: Var, seed: Tensor): void {
    this.backwardMany([root], [seed]);
  }

  /**
   * Backpropagate from several outputs at once, each with its own seed gradient (a null seed
   * means that output received no gradient). Used by activation recomputation, whose re-run layer
   * has several outputs the rest of the model used.
   */
  backwardMany(roots: readonly Var[], seeds: readonly (Tensor | null)[]): void {
    if (this.released) throw new Error('backward called twice on one graph');
    if (roots.length !== seeds.length) throw new Error(`backwardMany: ${roots.length} roots, ${seeds.length} seeds`);
    roots.forEach((r, i) => {
      if (seeds[i] && !r.requiresGrad) throw new Error(`backward from ${r}, which does not require grad`);
    });
    this.released = true;
    // Drop the graph's hold on intermediates: from here on only saved refs keep them alive.
    for (const v of this.owned) if (!this.kept.has(v)) release(v.data);

    const grads = new Map<Var, Tensor>();
    roots.forEach((r, i) => {
      const sd = seeds[i];
      if (!sd) return;
      const prev = grads.get(r);
      grads.set(r, prev ? accumulate(prev, retain(sd)) : retain(sd));
    });
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      const gOut = node.outputs.map((v) => grads.get(v) ?? null);
      if (gOut.every((g) => g === null)) {
        this.finish(node);
        continue;
      }
      const gIn = node.backwardFn(gOut, {
        saved: node.saved,
        needsGrad: (k) => node.inputs[k]!.requiresGrad,
      });
      // Take a reference on every returned gradient before dropping the incoming ones: a
      // backward may pass dy straight through (d(a+b)/da = dy), aliasing an incoming gradient.
      const owned = gIn.map((g) => (g ? retain(g) : null));
      for (const v of node.outputs) {
        const g = grads.get(v);
        if (g) {
          release(g);
          grads.delete(v);
        }
      }
      this.finish(node);
      node.inputs.forEach((input, k) => {
        const g = owned[k];
        if (!g) return;
        if (!input.requiresGrad) return release(g);
        if (input.isLeaf) input.grad = accumulate(input.grad, g);
        else grads.set(input, accumulate(grads.get(input) ?? null, g));
      });
    }
    for (const g of grads.values()) release(g);
    this.nodes = [];
  }

  private finish(node: Node): void {
    if (node.done) return;
    node.done = true;
    for (const t of node.saved) release(t);
    node.saved = [];
  }

  /** Free every value this graph made (and any saved tensors not yet used). */
  dispose(): void {
    for (const n of this.nodes) this.finish(n);
    this.nodes = [];
    for (const v of this.owned) {
      if (!this.released || this.kept.has(v)) release(v.data);
    }
    this.owned = [];
    this.kept.clear();
  }
}

/**
 * Add gradient `g` (one reference owned by the caller) into `prev`. The sum is written in place
 * unless `prev` is shared with another value (aliased pass-through gradients): then a new tensor.
 */
function accumulate(prev: Tensor | null, g: Tensor): Tensor {
  if (!prev) return g;
  if (refCount(prev) > 1 || prev === g) {
    const sum = addNew(prev, g);
    release(prev);
    release(g);
    return retain(sum);
  }
  accumulateInto(prev, g);
  release(g);
  return prev;
}

export { Var };
