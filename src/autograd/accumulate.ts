/** In-place gradient accumulation (dst += src), recorded on the GPU. */
import type { Tensor } from '../kernels/tensor.ts';
import { addInPlace } from '../kernels/elementwise.ts';

export function accumulateInto(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size) throw new Error(`gradient accumulation: ${dst} and ${src} differ in size`);
  addInPlace(dst, src);
}
