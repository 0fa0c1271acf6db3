/** Gradient bookkeeping for parameters. */
import { release } from './variable.ts';
import type { Var } from './variable.ts';

/**
 * Reset gradients before the next accumulation. `free` returns the buffers to the pool (the next
 * backward allocates them again); otherwise they are zero-filled in place, keeping memory flat.
 */
export function zeroGrad(params: readonly Var[], free = false): void {
  for (const p of params) {
    if (!p.grad) continue;
    if (free) {
      release(p.grad);
      p.grad = null;
    } else p.grad.rt.fill(p.grad, 0);
  }
}
