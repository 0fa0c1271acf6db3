/**
 * MoE routing as autograd ops: top-k router, the dispatch plan (no gradient), gather into
 * expert-contiguous rows, grouped expert matmul, and the weighted combine back per token.
 */
import type { Var } from '../variable.ts';
import type { Tensor } from '../../kernels/tensor.ts';
import { routerTopKBackward } from '../../kernels/router.ts';
import {
  combine as combineKernel,
  combineBackward,
  gatherRows as gatherKernel,
  gatherRowsBackward,
  routeAndDispatch as routeAndDispatchKernel,
  type DispatchPlan,
} from '../../kernels/dispatch.ts';
import { groupedMatmul, groupedMatmulWeightGrad } from '../../kernels/matmul.ts';
import { constants, record } from './op.ts';

type RouterOut = { probs: Tensor; idx: Tensor; weights: Tensor };

/**
 * The router and the token permutation in two dispatches (kernels/dispatch.ts routeAndDispatch):
 * probs [N,E] (f32 softmax), weights [N,k], idx [N,k] u32 (a Var only so the graph owns it), and the
 * plan, owned by the active graph. Bit for bit what the test oracles routerTopK + buildDispatch give (test/support/).
 */
export function routeAndDispatch(
  logits: Var,
  k: number,
  renormalize: boolean,
  experts: number,
  capacityFactor: number | null,
): { probs: Var; weights: Var; idx: Var; plan: DispatchPlan } {
  const r = routeAndDispatchKernel(logits.data, { k, renormalize, numExperts: experts, ...(capacityFactor === null ? {} : { capacityFactor }) });
  const out = recordRouter(logits, r, renormalize);
  constants('dispatch', planTensors(r.plan));
  return { ...out, plan: r.plan };
}

function recordRouter(logits: Var, { probs, idx, weights }: RouterOut, renormalize: boolean): { probs: Var; weights: Var; idx: Var } {
  const [p, w, i] = record({
    name: 'router',
    inputs: [logits],
    outputs: [probs, weights, idx],
    saved: [probs, idx],
    backward: ([dProbs, dWeights], ctx) => {
      const [pr, ix] = ctx.saved;
      const rt = pr!.rt;
      // The weights may be unused on the gradient path (e.g. only the aux loss reads probs).
      const dW = dWeights ?? rt.zeros(ix!.shape, 'f32', 'router.d_weights0');
      const dLogits = routerTopKBackward(pr!, ix!, dW, { renormalize, dProbsExtra: dProbs ?? undefined });
      if (!dWeights) dW.dispose();
      return [dLogits];
    },
  });
  return { probs: p!, weights: w!, idx: i! };
}

/** Ops whose backward reads the plan save it, so it outlives the graph's own reference. */
function planTensors(plan: DispatchPlan): Tensor[] {
  return [plan.counts, plan.offsets, plan.pos, plan.src, plan.rowPair, plan.dropped];
}

/** xs [N*k, d]: token rows in expert-contiguous order. */
export function gatherRows(x: Var, plan: DispatchPlan): Var {
  return record({
    name: 'gather',
    inputs: [x],
    outputs: [gatherKernel(x.data, plan)],
    saved: planTensors(plan),
    backward: ([dxs]) => [gatherRowsBackward(dxs!, plan)],
  })[0]!;
}

/** Every expert's rows times its own weight [E, out, in] (transposed, like nn.Linear), one dispatch. */
export function groupedLinear(xs: Var, w: Var, plan: DispatchPlan): Var {
  const offsets: Tensor = plan.offsets;
  return record({
    name: 'groupedLinear',
    inputs: [xs, w],
    outputs: [groupedMatmul(xs.data, w.data, offsets, { transB: true })],
    saved: [xs.data, w.data, ...planTensors(plan)],
    backward: ([dy], ctx) => {
      const [x, wt] = ctx.saved;
      return [
        ctx.needsGrad(0) ? groupedMatmul(dy!, wt!, offsets, { transB: false }) : null,
        ctx.needsGrad(1) ? groupedMatmulWeightGrad(dy!, x!, offsets) : null,
      ];
    },
  })[0]!;
}

/** y[t] = Σ_j w[t,j] ys[pos[t,j]]. */
export function combine(ys: Var, weights: Var, plan: DispatchPlan): Var {
  return record({
    name: 'combine',
    inputs: [ys, weights],
    outputs: [combineKernel(ys.data, weights.data, plan)],
    saved: [ys.data, weights.data, ...planTensors(plan)],
    backward: ([dy], ctx) => {
      const { dys, dWeights } = combineBackward(dy!, ctx.saved[0]!, ctx.saved[1]!, plan);
      return [dys, dWeights];
    },
  })[0]!;
}
