/**
 * What the training step (src/train/step/trainer.ts) and the memory planner
 * (src/train/plan/planner.ts) need from an optimizer, so neither branches on its class. Two
 * implement it:
 *   AdamW      (adamw.ts)       moments on the GPU; the update is recorded into the step's own
 *                               submit, gated by the GPU skip flag;
 *   HostAdamW  (host-adamw.ts)  master weights and moments in host memory (optim.offload "host");
 *                               the update runs after the step's readback said the step is good.
 */
import type { Tensor } from '../kernels/tensor.ts';

/** Host memory an offloaded optimizer holds: f32 master weights, the two moments, one group's gradient staging. */
export interface HostOptimizerBytes {
  master: number;
  moments: number;
  staging: number;
}

export interface StepOptimizer {
  /** Optimizer steps applied (skipped steps do not count); the trainer mirrors the GPU's count here. */
  step: number;
  /**
   * The update reads the gradients after the step's readback (host offload): the trainer keeps
   * them alive until then instead of freeing them at the end of record().
   */
  readonly updatesAfterReadback: boolean;
  /**
   * Record the update into the step's GPU work. `clip` holds the clip coefficient over the loss
   * scale at CLIP.gradScale, `skip` is the GPU skip flag (nonzero: nothing changes), `scalars` the
   * bias-corrected AdamW scalars from the GPU step count. A host optimizer records nothing.
   */
  recordUpdate(lr: number, clip: Tensor, skip: Tensor, scalars: Tensor): void;
  /**
   * After the readback of a step the GPU found good: the host update with `gradScale` (the clip
   * coefficient over the loss scale), or null when the update was already recorded on the GPU.
   */
  applyAfterReadback(lr: number, gradScale: number): Promise<void> | null;
  /** The moment tensors it keeps on the GPU (the planner counts them as optimizer state). */
  gpuMoments(): readonly { m: Tensor; v: Tensor }[];
  /** Host memory it holds (null: none, everything is on the GPU). */
  readonly hostBytes: HostOptimizerBytes | null;
  dispose(): void;
}
