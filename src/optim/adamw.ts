/**
 * AdamW over named parameters (PyTorch's formula, decoupled weight decay). Decay applies to the
 * parameters marked `decay` (weights), not to norms and biases. The global clip coefficient and
 * the skip flag come from GPU tensors, so an optimizer step never waits on the CPU.
 */
import { adamw as adamwKernel, CLIP } from '../kernels/adamw.ts';
import type { Tensor } from '../kernels/tensor.ts';
import type { Parameter } from '../model/parameter.ts';
import type { StepOptimizer } from './step-optimizer.ts';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface ParamState {
  name: string;
  m: Tensor;
  v: Tensor;
}

export class AdamW implements StepOptimizer {
  readonly state = new Map<Parameter, ParamState>();
  /** Optimizer steps applied (skipped steps do not count: bias correction stays exact). */
  step = 0;
  /** The update is recorded on the GPU with the step: the gradients may go once it is. */
  readonly updatesAfterReadback = false;
  /** Everything is on the GPU. */
  readonly hostBytes = null;

  constructor(
    readonly params: readonly Parameter[],
    readonly opts: AdamWOptions,
  ) {
    for (const p of params) {
      const rt = p.data.rt;
      this.state.set(p, { name: p.name, m: rt.zeros(p.shape, 'f32', `${p.name}.exp_avg`), v: rt.zeros(p.shape, 'f32', `${p.name}.exp_avg_sq`) });
    }
  }

  /**
   * Record one update of every parameter with a gradient. `clip` is clipCoefficient's output
   * (its gradScale = clip coefficient / loss scale multiplies the gradients); `skip` is a GPU
   * flag: nonzero leaves p, m, v untouched; `scalars` (train-state.ts adamScalars) takes the
   * bias correction from the GPU step count instead of `step`.
   */
  apply(lr: number, clip: Tensor | null, skip: Tensor | null, step: number, scalars?: Tensor): void {
    for (const p of this.params) {
      if (!p.grad) continue;
      const s = this.state.get(p)!;
      adamwKernel(
        p.data,
        p.grad,
        s.m,
        s.v,
        { lr, step, beta1: this.opts.beta1, beta2: this.opts.beta2, eps: this.opts.eps, weightDecay: p.decay ? this.opts.weightDecay : 0 },
        { ...(clip ? { clip, clipIndex: CLIP.gradScale } : {}), ...(skip ? { skip, skipIndex: 0 } : {}), ...(scalars ? { scalars } : {}) },
      );
    }
  }

  /** StepOptimizer: update t = step + 1, gated by the GPU skip flag, into the step's submit. */
  recordUpdate(lr: number, clip: Tensor, skip: Tensor, scalars: Tensor): void {
    this.apply(lr, clip, skip, this.step + 1, scalars);
  }

  /** StepOptimizer: nothing is left for the host after the readback. */
  applyAfterReadback(): null {
    return null;
  }

  /** Optimizer state in checkpoint order. */
  entries(): ParamState[] {
    return this.params.map((p) => this.state.get(p)!);
  }

  /** StepOptimizer: the moments on the GPU are all of its state. */
  gpuMoments(): ParamState[] {
    return this.entries();
  }

  dispose(): void {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}
