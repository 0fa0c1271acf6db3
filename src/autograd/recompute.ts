/**
 * Activation recomputation ("gradient checkpointing") for one block of the model: the forward runs
 * the block in a throwaway no-grad graph and keeps only its inputs and outputs; backward runs the
 * block again under a fresh grad graph and backpropagates through it. Memory: one block's
 * activations at a time instead of all of them, for one extra forward per block.
 *
 * The block's parameters are leaves of the re-run graph, so their gradients accumulate directly
 * into `.grad` there; the outer node only passes gradients back to the block's inputs.
 */
import { Graph, currentGraph } from './graph.ts';
import { Var, disown, retain } from './variable.ts';
import type { Tensor } from '../kernels/tensor.ts';

export interface RecomputedBlock<T> {
  /** The block's differentiable outputs (as seen by the rest of the model). */
  outputs: Var[];
  /** Whatever else the block returns (non-differentiable tensors stay alive with the outer graph). */
  extra: T;
}

/**
 * Run `block` with recomputation. `block(inputs)` must return the Vars to expose and any extra
 * data; it is called twice (forward, then in backward) and must be deterministic.
 * `params` are the block's parameters: they make the node record even when no input needs grad.
 */
export function recomputed<T>(
  name: string,
  inputs: readonly Var[],
  params: readonly Var[],
  block: (xs: Var[]) => { outputs: Var[]; extra: T; keep?: Tensor[] },
): RecomputedBlock<T> {
  const outer = currentGraph();
  const inner = new Graph(false);
  const first = inner.run(() => block([...inputs]));
  // Keep the outputs (and tensors the caller needs later) past the inner graph's disposal.
  const outTensors = first.outputs.map((v) => retain(v.data));
  const kept = (first.keep ?? []).map(retain);
  inner.dispose();
  // The kept extras belong to the outer graph from here on (its Var takes over our reference).
  for (const t of kept) outer.adopt(new Var(disown(t), false, `${name}.kept`));
  const outs = outer.record(
    name,
    [...inputs, ...params],
    outTensors,
    inputs.map((v) => v.data),
    (gOut, ctx) => {
      const g = new Graph(true);
      const xs = inputs.map((v, i) => new Var(ctx.saved[i]!, v.requiresGrad, `${name}.input${i}`));
      const again = g.run(() => block(xs));
      g.backwardMany(again.outputs, gOut);
      const dx = xs.map((x) => {
        const gr = x.grad;
        x.grad = null;
        return gr;
      });
      g.dispose();
      for (const x of xs) x.dispose();
      // The gradients leave the re-run graph untracked, as if fresh from a kernel.
      return [...dx.map((t) => (t ? disown(t) : null)), ...params.map(() => null)];
    },
  );
  // record()'s Vars hold their own references now.
  for (const t of outTensors) disown(t);
  return { outputs: outs, extra: first.extra };
}
