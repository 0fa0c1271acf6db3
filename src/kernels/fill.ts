/**
 * Filling a tensor's buffer with one 32-bit pattern (shaders/fill.wgsl): NaN poison, constants.
 * Shared by the runtimes, so a fill is the same recorded dispatch on each.
 */
import type { Backend, DType, Tensor } from './tensor.ts';
import { f32ToF16Bits } from './f16.ts';
import { grid1d } from './grid.ts';

/** The NaN pattern a poisoned buffer of `dtype` holds (two f16 NaNs per word for f16). */
export function poisonBits(dtype: DType): number {
  return dtype === 'f16' ? 0x7e007e00 : 0x7fc00000;
}

/** The 32-bit word that repeats `value` in a buffer of `dtype`. */
export function fillPattern(dtype: DType, value: number): number {
  switch (dtype) {
    case 'f32':
      return new Uint32Array(new Float32Array([value]).buffer)[0]!;
    case 'f16': {
      const h = f32ToF16Bits(value);
      return (h | (h << 16)) >>> 0;
    }
    default:
      return value >>> 0;
  }
}

/** Write `bits` into every word of t's whole buffer (its size class, not only its elements). */
export function fillWords(rt: Backend, t: Tensor, bits: number): void {
  const words = t.buffer.size / 4;
  rt.dispatch(rt.kernel({ shader: 'fill' }), { dst: t }, grid1d(rt, Math.ceil(words / 256)), { bits: bits >>> 0, words });
}
