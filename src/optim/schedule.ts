/** Learning-rate and aux-loss schedules, as pure functions of the optimizer step (1-based). */

export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  steps: number;
  decay: 'cosine' | 'constant';
  minLrRatio: number;
}

/** Linear warmup from lr/warmup to lr, then cosine decay to minLrRatio * lr at the last step. */
export function learningRate(s: LrSchedule, step: number): number {
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const span = Math.max(1, s.steps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const floor = s.lr * s.minLrRatio;
  return floor + (s.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

export interface AuxSchedule {
  auxFactor: number;
  auxStart: number;
  auxWarmupSteps: number;
}

/** Aux factor ramps linearly from auxStart to auxFactor over auxWarmupSteps (docs/DESIGN.md §7.2). */
export function auxFactor(s: AuxSchedule, step: number): number {
  if (s.auxWarmupSteps <= 0 || step >= s.auxWarmupSteps) return s.auxFactor;
  return s.auxStart + ((s.auxFactor - s.auxStart) * step) / s.auxWarmupSteps;
}
