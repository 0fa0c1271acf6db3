/**
 * The contract between kernel wrappers and the runtimes that run them: `Backend` (what a wrapper
 * may ask: allocate, upload, write, fill, kernel, dispatch, copy, read back, memory, caps) and the
 * `Tensor` it hands out (shape, dtype and a pooled buffer). Two runtimes implement it: the Dawn
 * runtime (runtime.ts) and the meta runtime (meta-runtime.ts), which only counts bytes, so the
 * memory planner runs the engine's own code (docs/DESIGN.md §2).
 * Both live in this one module because each refers to the other.
 */
import type { DeviceCaps } from './caps.ts';
import type { KernelPolicy, PolicyOverride } from './policy.ts';
import type { Kernel, KernelSpec } from './kernel-spec.ts';
import type { UniformValues } from './wgsl-interface.ts';
import type { DeviceBuffer, PoolStats } from './buffer-pool.ts';

export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array | number[];
/** What a readback returns: f16 widened to f32. */
export type ReadArray = Float32Array | Int32Array | Uint32Array;

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
export function floatStorage(rt: Backend, dtype: DType, subject: string): FloatDType {
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`${subject} must be f32 or f16, got ${dtype}`);
  if (dtype === 'f16' && !rt.caps.f16) throw new Error(`${subject} is f16 but this device has no shader-f16`);
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

export interface CopyRange {
  /** Bytes into the source / destination (multiples of 4). */
  srcOffset?: number;
  dstOffset?: number;
  /** Default: the whole source from srcOffset. */
  bytes?: number;
}

/** Work recorded so far (tests and the trainer's metrics read these). */
export interface BackendCounters {
  submits: number;
  dispatches: number;
}

/** What a dispatch computes, for step-time estimates (the meta runtime sums it; matmuls and attention report it). */
export interface DispatchCost {
  /** Floating-point operations (a multiply-add counts 2). */
  flops: number;
}

export interface Backend {
  readonly caps: DeviceCaps;
  /** Every device-dependent kernel choice, derived from `caps` (policy.ts): wrappers read it, never caps.family. */
  readonly policy: KernelPolicy;
  /**
   * Run `fn` (synchronous: it records, it does not wait) with the policy re-derived with `override`
   * applied on top of the current one; the policy is restored afterwards. How tests, benchmarks and
   * the matmul autotune force a variant.
   */
  withPolicy<T>(override: PolicyOverride, fn: () => T): T;
  /**
   * A value built once per runtime and key (generated shader templates, per-runtime tables), so
   * wrappers keep nothing in module state. `space` names the wrapper.
   */
  memo<T>(space: string, key: string, build: () => T): T;
  /** When true, every new tensor buffer is filled with NaN bits first, so a kernel that skips an element is caught. */
  poison: boolean;
  readonly counters: Readonly<BackendCounters>;

  kernel(spec: KernelSpec): Kernel;
  /**
   * Record one dispatch. Storage buffers and uniform fields are given by their WGSL names (the
   * kernel's interface maps them to binding indices and the struct's layout); a name the shader
   * does not declare, or a uniform field left out, throws.
   */
  dispatch(
    kernel: Kernel,
    bindings: Readonly<Record<string, Tensor>>,
    workgroups: readonly [number, number?, number?],
    uniforms?: UniformValues,
    cost?: DispatchCost,
  ): void;

  /** An uninitialised tensor (NaN-poisoned when `poison` is set). */
  empty(shape: readonly number[], dtype?: DType, label?: string): Tensor;
  zeros(shape: readonly number[], dtype?: DType, label?: string): Tensor;
  /** Fill a tensor's whole buffer with a 32-bit pattern, recorded in order with other work. */
  fillBits(t: Tensor, bits: number): void;
  fill(t: Tensor, value: number): void;
  /**
   * Upload host data into a new tensor. `data` may be a function: it is called only by runtimes
   * that hold values (the meta runtime never builds the host array, e.g. a parameter's init).
   */
  upload(data: HostArray | (() => HostArray), shape: readonly number[], dtype?: DType, label?: string): Tensor;
  /** Overwrite a tensor's contents from the host. */
  write(t: Tensor, data: HostArray): void;
  /** Copy bytes between tensors, recorded in order with other work. */
  copy(src: Tensor, dst: Tensor, range?: CopyRange): void;

  /** Submit recorded work, wait for it, and throw any device error since the last check. */
  sync(): Promise<void>;
  read(t: Tensor): Promise<ReadArray>;
  /** Download many tensors with one submit and one map (a step's metrics ride in its own submit). */
  readMany(tensors: readonly Tensor[]): Promise<ReadArray[]>;

  /** Live / peak bytes of tensor buffers. */
  memory(): PoolStats;
  /** Start a new peak window at the current live bytes. */
  resetPeak(): void;
  /** Return a tensor's buffer to the pool (Tensor.dispose). */
  releaseBuffer(buffer: DeviceBuffer): void;
  /**
   * Run `fn` as a named part of the work ('forward', 'backward', 'update', 'layer 3'): the meta
   * runtime attributes the bytes allocated inside to it (the plan's categories and per-layer rows).
   */
  region<T>(name: string, fn: () => T): T;
}

export class Tensor {
  readonly size: number;
  private disposed = false;

  constructor(
    readonly rt: Backend,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly buffer: DeviceBuffer,
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
    this.rt.releaseBuffer(this.buffer);
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
  read(): Promise<ReadArray> {
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
