/**
 * AdamW (decoupled weight decay, PyTorch formula) in place on f32 p, m, v, with the global
 * clip coefficient and an optional skip flag read from GPU tensors, so clipping and the
 * non-finite guard never need a readback.
 */
import type { Tensor } from './tensor.ts';
import { grid1d } from './grid.ts';

/** Layout of clipCoefficient's result. */
export const CLIP = { norm: 0, coef: 1, clippedFraction: 2, nonFinite: 3, gradScale: 4 } as const;

export interface AdamWHyper {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** 1-based step number (bias correction uses beta^step). */
  step: number;
}

export interface AdamWGpuInputs {
  /** f32 tensor holding the clip coefficient at clip[clipIndex] (e.g. clipCoefficient's output, CLIP.coef). */
  clip?: Tensor;
  clipIndex?: number;
  /** f32 or u32 tensor; the step is a no-op when skip[skipIndex] != 0 (an f32 NaN also skips). */
  skip?: Tensor;
  skipIndex?: number;
  /**
   * f32 [2] = [lr / (1 - beta1^t), sqrt(1 - beta2^t)] computed on the GPU (train-state.ts
   * adamScalars): the step count then lives on the GPU and `hyper.step` is not used.
   */
  scalars?: Tensor;
}

function checkSame(p: Tensor, t: Tensor, what: string): void {
  if (t.dtype !== 'f32') throw new Error(`adamw: ${what} ${t} must be f32`);
  if (t.size !== p.size) throw new Error(`adamw: ${what} ${t} has ${t.size} elements, param ${p} has ${p.size}`);
}

/** One AdamW step, in place on p, m, v. */
export function adamw(p: Tensor, g: Tensor, m: Tensor, v: Tensor, hyper: AdamWHyper, gpu: AdamWGpuInputs = {}): void {
  checkSame(p, p, 'param');
  checkSame(p, g, 'grad');
  checkSame(p, m, 'exp_avg');
  checkSame(p, v, 'exp_avg_sq');
  const { lr, step } = hyper;
  const b1 = hyper.beta1 ?? 0.9;
  const b2 = hyper.beta2 ?? 0.999;
  const eps = hyper.eps ?? 1e-8;
  const wd = hyper.weightDecay ?? 0.01;
  if (!(step >= 1) || !Number.isInteger(step)) throw new Error(`adamw: step must be an integer >= 1, got ${step}`);
  const rt = p.rt;
  const decls: string[] = [];
  const bindings: Record<string, Tensor> = { p, g, m, v };
  let slot = 4;
  let coef = 'return 1.0;';
  let skip = 'return false;';
  const clipIndex = gpu.clipIndex ?? 0;
  const skipIndex = gpu.skipIndex ?? 0;
  if (gpu.clip) {
    if (gpu.clip.dtype !== 'f32' || clipIndex >= gpu.clip.size) throw new Error(`adamw: clip ${gpu.clip} has no f32 element ${clipIndex}`);
    decls.push(`@group(0) @binding(${slot++}) var<storage, read> clip: array<f32>;`);
    bindings.clip = gpu.clip;
    coef = 'return clip[u.clipIndex];';
  }
  if (gpu.skip) {
    const ty = gpu.skip.dtype;
    if ((ty !== 'f32' && ty !== 'u32') || skipIndex >= gpu.skip.size) throw new Error(`adamw: skip ${gpu.skip} has no f32/u32 element ${skipIndex}`);
    decls.push(`@group(0) @binding(${slot++}) var<storage, read> skip: array<${ty}>;`);
    bindings.skip = gpu.skip;
    // Read the flag's bits so NaN counts as "skip" whatever the compiler assumes about NaN.
    skip = ty === 'u32' ? 'return skip[u.skipIndex] != 0u;' : 'return (bitcast<u32>(skip[u.skipIndex]) & 0x7fffffffu) != 0u;';
  }
  let stepSize = 'u.stepSize';
  let bc2 = 'u.bc2sqrt';
  if (gpu.scalars) {
    if (gpu.scalars.dtype !== 'f32' || gpu.scalars.size !== 2) throw new Error(`adamw: scalars ${gpu.scalars} must be f32 [2]`);
    decls.push(`@group(0) @binding(${slot++}) var<storage, read> scal: array<f32>;`);
    bindings.scal = gpu.scalars;
    stepSize = 'scal[0]';
    bc2 = 'scal[1]';
  }
  const kernel = rt.kernel({
    shader: 'adamw',
    params: { EXTRA_DECLS: decls.join('\n'), COEF: coef, SKIP: skip, STEP_SIZE: stepSize, BC2: bc2, INV_SCALE: 'uc.invScale' },
  });

  // Host-side float64 scalars, rounded once to f32.
  rt.dispatch(kernel, bindings, grid1d(rt, Math.ceil(p.size / 256)), {
    count: p.size,
    clipIndex,
    skipIndex,
    decay: 1 - lr * wd,
    _b1: b1,
    b2,
    eps,
    stepSize: lr / (1 - b1 ** step),
    bc2sqrt: Math.sqrt(1 - b2 ** step),
    omb1: 1 - b1,
    omb2: 1 - b2,
  });
}

/**
 * From the global sum of squares (sumSquaresMany) of gradients that carry a loss scale, on the
 * GPU: f32 [5] = [norm, coef = min(1, maxNorm / (norm + 1e-6)), clipped fraction = 1 - coef,
 * nonFinite, gradScale = coef · invScale], with norm = sqrt(sumSq) · invScale the unscaled norm.
 * AdamW multiplies the gradients by gradScale (CLIP.gradScale): unscaling and clipping in one.
 * nonFinite is 1 when the norm is NaN or Inf (then coef is NaN, or 0 for +Inf, as PyTorch's
 * formula gives): pass the result as AdamW's skip with skipIndex CLIP.nonFinite to drop the step.
 */
export function clipCoefficient(sumSq: Tensor, maxNorm: number, invScale = 1, scaleState?: Tensor): Tensor {
  if (sumSq.dtype !== 'f32' || sumSq.size < 1) throw new Error(`clipCoefficient: ${sumSq} must be an f32 scalar`);
  if (!(maxNorm > 0)) throw new Error(`clipCoefficient: maxNorm must be > 0, got ${maxNorm}`);
  if (!(invScale > 0) || !Number.isFinite(invScale)) throw new Error(`clipCoefficient: invScale must be a positive finite number, got ${invScale}`);
  const rt = sumSq.rt;
  const out = rt.empty([5], 'f32', 'clip coefficient');
  // With `scaleState` (train-state.ts), the scale is read on the GPU: invScale = 1 / state[1].
  const fromState = !!scaleState;
  if (scaleState && (scaleState.dtype !== 'f32' || scaleState.size < 2))
    throw new Error(`clipCoefficient: scaleState ${scaleState} must be the f32 train state`);
  const k = rt.kernel({
    shader: 'adamw',
    entry: 'clip_coef_main',
    params: {
      EXTRA_DECLS: fromState ? '@group(0) @binding(2) var<storage, read> scale_state: array<f32>;' : '',
      COEF: 'return 1.0;',
      SKIP: 'return false;',
      STEP_SIZE: 'u.stepSize',
      BC2: 'u.bc2sqrt',
      INV_SCALE: fromState ? '(1.0 / scale_state[1])' : 'uc.invScale',
    },
  });
  rt.dispatch(k, { clip_out: out, sumsq: sumSq, ...(scaleState ? { scale_state: scaleState } : {}) }, [1], { maxNorm, nanBits: 0x7fc00000, invScale });
  return out;
}
