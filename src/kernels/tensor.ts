/** A GPU tensor: shape, dtype and a pooled storage buffer. No autograd here (see src/autograd). */
import type { Runtime } from './runtime.ts';

export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`bad dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Storage type of float data the kernels read and write (their math is f32 either way). */
export type FloatDType = 'f32' | 'f16';

/**
 * `dtype` as float storage: f32, or f16 where the device has shader-f16. The one check every
 * kernel wrapper makes of its float operands; `subject` names the operand in the error.
 */
export function floatStorage(rt: Runtime, dtype: DType, subject: string): FloatDType {
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`${subject} must be f32 or f16, got ${dtype}`);
  if (dtype === 'f16' && !rt.gpu.features.f16) throw new Error(`${subject} is f16 but this device has no shader-f16`);
  return dtype;
}

/** floatStorage of a tensor: `what` is the kernel (or kernel and operand) for the error. */
export function floatDtype(t: Tensor, what: string): FloatDType {
  return floatStorage(t.rt, t.dtype, `${what}: ${t}`);
}

/** Bytes a tensor's buffer needs: WebGPU copies and bindings work in 4-byte units. */
export function storageBytes(shape: readonly number[], dtype: DType): number {
  return Math.max(4, Math.ceil((numel(shape) * BYTES_PER_ELEMENT[dtype]) / 4) * 4);
}

export class Tensor {
  readonly size: number;
  private disposed = false;

  constructor(
    readonly rt: Runtime,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly buffer: GPUBuffer,
    readonly label: string,
  ) {
    this.size = numel(shape);
  }

  get byteLength(): number {
    return storageBytes(this.shape, this.dtype);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Return the buffer to the pool. Safe to call while recorded work still reads it (queue order). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.pool.release(this.buffer);
  }

  /**
   * Move this tensor's buffer into a tensor of another shape with the same element count.
   * This handle becomes unusable (moved, not released), so there is never a second owner.
   */
  reshape(shape: readonly number[], label = this.label): Tensor {
    if (this.disposed) throw new Error(`reshape of disposed ${this}`);
    if (numel(shape) !== this.size) throw new Error(`reshape ${this} to [${shape.join(', ')}]: element counts differ`);
    this.disposed = true;
    return new Tensor(this.rt, [...shape], this.dtype, this.buffer, label);
  }

  /** Download as Float32Array (f16 is widened), Int32Array or Uint32Array. */
  read(): Promise<Float32Array | Int32Array | Uint32Array> {
    return this.rt.read(this);
  }

  async readF32(): Promise<Float32Array> {
    const d = await this.rt.read(this);
    if (!(d instanceof Float32Array)) throw new Error(`tensor ${this.label} is ${this.dtype}, not a float tensor`);
    return d;
  }

  toString(): string {
    return `Tensor(${this.label}, [${this.shape.join(', ')}], ${this.dtype})`;
  }
}
