/**
 * Dynamic loss scaling for f16 activations (GradScaler semantics): its options and the host's
 * mirror of its state, which checkpoints save and --resume restores.
 *
 * The backward is seeded with `scale` so small gradients survive f16 storage; the optimizer
 * divides it back out (folded into the clip coefficient on the GPU, see kernels/adamw.ts). A step
 * whose gradient norm is not finite while every forward tensor was finite is an *overflow*: the
 * step is skipped and the scale halved. It counts as a bad step (guards, stop after K) only once
 * the scale cannot go lower: then the non-finite value is not a range problem any more. The
 * update itself runs on the GPU (shaders/train-state.wgsl step_end; its reference model is
 * test/reference/train-state-ref.ts), so a step never waits for the previous step's readback.
 */
export interface LossScaleOptions {
  initialScale: number;
  growthInterval: number;
  minScale: number;
  /** Upper bound of growth: 2^24 keeps scale x (f32 gradient) far from f32 overflow. */
  maxScale?: number;
}

export interface LossScaleState {
  scale: number;
  goodSteps: number;
}

export class LossScaler {
  scale: number;
  /** Consecutive steps without overflow since the last change. */
  goodSteps = 0;
  readonly maxScale: number;

  constructor(readonly opts: LossScaleOptions) {
    if (!(opts.initialScale >= opts.minScale)) throw new Error(`loss scale: initialScale ${opts.initialScale} is below minScale ${opts.minScale}`);
    this.scale = opts.initialScale;
    this.maxScale = opts.maxScale ?? 2 ** 24;
  }

  state(): LossScaleState {
    return { scale: this.scale, goodSteps: this.goodSteps };
  }

  restore(s: Partial<LossScaleState>): void {
    if (typeof s.scale === 'number' && s.scale > 0 && Number.isFinite(s.scale)) this.scale = s.scale;
    if (typeof s.goodSteps === 'number' && s.goodSteps >= 0) this.goodSteps = Math.floor(s.goodSteps);
  }
}
