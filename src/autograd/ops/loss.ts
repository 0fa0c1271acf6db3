/**
 * Loss ops. Every loss is a scalar [1] Var; backward kernels take the upstream gradient as a
 * [1] GPU tensor, so no loss ever needs a readback inside the step.
 */
import type { Var } from '../variable.ts';
import type { Tensor } from '../../kernels/tensor.ts';
import { crossEntropy, crossEntropyBackward, huberLoss as huberKernel, huberLossBackward } from '../../kernels/loss.ts';
import { axpy, scale } from '../../kernels/elementwise.ts';
import { meanPool, meanPoolBackward } from '../../kernels/mean-pool.ts';
import {
  pooledAuxLoss as pooledKernel,
  pooledAuxLossBackward,
  routerZLoss,
  routerZLossBackward,
  switchLoss,
  switchLossBackward,
} from '../../kernels/moe-loss.ts';
import { record1 } from './op.ts';

/** Σ mask·huber(pred - target) / Σ mask (Time-MoE, delta 2.0). target and mask carry no gradient. */
export function huberLoss(pred: Var, target: Tensor, mask: Tensor, delta: number): Var {
  const { loss, count } = huberKernel(pred.data, target, mask, delta);
  return record1({
    name: 'huber',
    inputs: [pred],
    outputs: [loss],
    saved: [pred.data, target, mask],
    temps: [count],
    backward: ([g], ctx) => {
      const [p, t, m, c] = ctx.saved;
      return [huberLossBackward(p!, t!, m!, c!, g!, delta)];
    },
  });
}

/** Mean cross-entropy of logits [N, C] against i32 labels [N] (-1 = ignored). */
export function crossEntropyLoss(logits: Var, labels: Tensor): Var {
  const { loss, count, stats } = crossEntropy(logits.data, labels);
  return record1({
    name: 'crossEntropy',
    inputs: [logits],
    outputs: [loss],
    saved: [logits.data, labels],
    temps: [stats, count],
    backward: ([g], ctx) => {
      const [l, y, s, c] = ctx.saved;
      return [crossEntropyBackward(l!, y!, s!, c!, g!)];
    },
  });
}

/** Σ coefs[i] * terms[i] over scalar Vars (loss assembly). */
export function weightedSum(terms: readonly Var[], coefs: readonly number[]): Var {
  if (terms.length !== coefs.length || terms.length === 0) throw new Error('weightedSum: terms and coefs must be non-empty and of equal length');
  const rt = terms[0]!.data.rt;
  const out = rt.zeros([1], 'f32', 'weightedSum');
  terms.forEach((t, i) => axpy(t.data, out, coefs[i]!, 1));
  return record1({
    name: 'weightedSum',
    inputs: terms,
    outputs: [out],
    backward: ([g], ctx) => terms.map((_, i) => (ctx.needsGrad(i) ? scale(g!, coefs[i]!) : null)),
  });
}

/** Mean over the sequence: h [B*T, d] -> [B, d]. */
export function meanPoolSeq(h: Var, s: { batch: number; seqLen: number }): Var {
  const d = h.shape[1]!;
  return record1({
    name: 'meanPool',
    inputs: [h],
    outputs: [meanPool(h.data, s.batch, s.seqLen, d)],
    backward: ([g]) => [meanPoolBackward(g!, s.batch, s.seqLen, d)],
  });
}

export interface RoutedLayer {
  probs: Var;
  idx: Tensor;
}

/** HF / Time-MoE pooled load-balancing loss over all layers (balanced = k). */
export function pooledAuxLoss(layers: readonly RoutedLayer[]): Var {
  const { loss, coef } = pooledKernel(layers.map((l) => ({ probs: l.probs.data, idx: l.idx })));
  const shapes = layers.map((l) => ({ probs: l.probs.data }));
  return record1({
    name: 'pooledAux',
    inputs: layers.map((l) => l.probs),
    outputs: [loss],
    temps: [coef],
    backward: ([g], ctx) => pooledAuxLossBackward(ctx.saved[0]!, g!, shapes),
  });
}

/** Mean over layers of the per-layer Switch loss E·Σ f_i P_i (balanced = 1). */
export function switchAuxLoss(layers: readonly RoutedLayer[]): Var {
  const rt = layers[0]!.probs.data.rt;
  const per = layers.map((l) => switchLoss(l.probs.data, l.idx));
  const out = rt.zeros([1], 'f32', 'switchAux');
  for (const p of per) {
    axpy(p.loss, out, 1 / layers.length, 1);
    p.loss.dispose();
  }
  const rows = layers.map((l) => l.probs.shape[0]!);
  return record1({
    name: 'switchAux',
    inputs: layers.map((l) => l.probs),
    outputs: [out],
    temps: per.map((p) => p.coef),
    backward: ([g], ctx) => {
      const gl = scale(g!, 1 / layers.length);
      const grads = ctx.saved.map((coef, i) => switchLossBackward(coef, gl, rows[i]!));
      gl.dispose();
      return grads;
    },
  });
}

/** ST-MoE router z-loss: mean over tokens of logsumexp(logits)². */
export function zLoss(logits: Var): Var {
  const { loss, lse } = routerZLoss(logits.data);
  return record1({
    name: 'zLoss',
    inputs: [logits],
    outputs: [loss],
    saved: [logits.data],
    temps: [lse],
    backward: ([g], ctx) => [routerZLossBackward(ctx.saved[0]!, ctx.saved[1]!, g!)],
  });
}
