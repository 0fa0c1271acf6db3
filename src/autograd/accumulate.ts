/** Gradient accumulation on the GPU. */
import type { Tensor } from '../kernels/tensor.ts';
import { add, axpy } from '../kernels/elementwise.ts';

/** dst += src, in place. */
export function accumulateInto(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size) throw new Error(`gradient accumulation: ${dst} and ${src} differ in size`);
  axpy(src, dst, 1, 1);
}

/** a + b into a new tensor. */
export function addNew(a: Tensor, b: Tensor): Tensor {
  return add(a, b);
}
