/**
 * Autograd values. A Var wraps a GPU tensor and, when produced by an op under grad mode,
 * the Node that made it. Tensors are reference-counted here (not in the kernel layer) so an
 * activation saved for backward is freed the moment the last backward that needs it has run.
 */
import type { Tensor } from '../kernels/tensor.ts';

const refs = new WeakMap<Tensor, number>();

export function retain(t: Tensor): Tensor {
  refs.set(t, (refs.get(t) ?? 0) + 1);
  return t;
}

/** Drop one reference; the buffer goes back to the pool when none is left. */
export function release(t: Tensor): void {
  const n = refs.get(t);
  if (n === undefined) throw new Error(`release of untracked ${t}`);
  if (n <= 1) {
    refs.delete(t);
    t.dispose();
  } else refs.set(t, n - 1);
}

/**
 * Drop one reference WITHOUT freeing, handing the tensor to a new owner that will track it
 * (e.g. a gradient returned to the engine as if fresh from a kernel).
 */
export function disown(t: Tensor): Tensor {
  const n = refs.get(t);
  if (n === undefined) throw new Error(`disown of untracked ${t}`);
  if (n <= 1) refs.delete(t);
  else refs.set(t, n - 1);
  return t;
}

export function refCount(t: Tensor): number {
  return refs.get(t) ?? 0;
}

export interface BackwardContext {
  /** Tensors saved by the forward, in the order given to record(). */
  readonly saved: readonly Tensor[];
  /** Whether input i needs a gradient (skip computing it otherwise). */
  needsGrad(i: number): boolean;
}

/**
 * Computes input gradients from output gradients. An output whose gradient is null was not
 * used on the path to the loss. Returned gradients are owned by the engine (it frees them).
 */
export type BackwardFn = (gradOutputs: readonly (Tensor | null)[], ctx: BackwardContext) => (Tensor | null)[];

export class Node {
  /** Position in the tape: backward runs nodes in reverse of this order. */
  readonly seq: number;
  outputs: Var[] = [];
  done = false;

  constructor(
    readonly name: string,
    readonly inputs: readonly Var[],
    readonly backwardFn: BackwardFn,
    public saved: Tensor[],
    seq: number,
  ) {
    this.seq = seq;
  }
}

export class Var {
  grad: Tensor | null = null;
  /** The node that produced this value (null for leaves and values made without grad). */
  creator: Node | null = null;
  /** Index among the creator's outputs. */
  outputIndex = 0;

  constructor(
    public data: Tensor,
    public requiresGrad = false,
    public name = '',
  ) {
    retain(data);
  }

  get shape(): readonly number[] {
    return this.data.shape;
  }

  get isLeaf(): boolean {
    return this.creator === null;
  }

  /** Free this value's tensor reference and its gradient. */
  dispose(): void {
    if (this.grad) {
      release(this.grad);
      this.grad = null;
    }
    release(this.data);
  }

  toString(): string {
    return `Var(${this.name || this.data.label}, [${this.shape.join(', ')}])`;
  }
}
