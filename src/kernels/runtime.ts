/**
 * The Dawn runtime: the Backend (tensor.ts) that runs kernels on a WebGPU device — buffer pool,
 * pipeline cache and command recorder, plus upload and download. One per process (`getRuntime()`).
 */
import { acquireDevice, type AcquireOptions, type GpuDevice } from './device.ts';
import { BufferPool, type DeviceBuffer, type PoolStats } from './buffer-pool.ts';
import { PipelineCache, type DawnKernel } from './pipeline-cache.ts';
import { Recorder } from './recorder.ts';
import { ErrorSink } from './errors.ts';
import type { DeviceCaps } from './caps.ts';
import { derivePolicy, mergeOverrides, type KernelPolicy, type PolicyOverride } from './policy.ts';
import type { Kernel, KernelSpec } from './kernel-spec.ts';
import { Tensor, numel, storageBytes, type Backend, type BackendCounters, type CopyRange, type DType, type HostArray, type ReadArray } from './tensor.ts';
import { f16BitsToF32, f32ToF16Bits } from './f16.ts';
import { fillPattern, fillWords, poisonBits } from './fill.ts';
import { checkUniforms, orderBindings, type UniformValues } from './wgsl-interface.ts';

export class DawnRuntime implements Backend {
  readonly device: GPUDevice;
  readonly caps: DeviceCaps;
  readonly pool: BufferPool<GPUBuffer>;
  readonly pipelines: PipelineCache;
  readonly recorder: Recorder;
  readonly errors: ErrorSink;
  private readonly staging: BufferPool<GPUBuffer>;
  poison = false;
  private readonly storageUsage: number;
  private override: PolicyOverride;
  private current: KernelPolicy;

  constructor(readonly gpu: GpuDevice, override: PolicyOverride = {}) {
    this.device = gpu.device;
    this.caps = gpu.caps;
    this.override = override;
    this.current = derivePolicy(this.caps, override);
    this.errors = new ErrorSink(this.device);
    const allocator = { create: (size: number, usage: number, label: string) => this.device.createBuffer({ size, usage, label }), destroy: (b: GPUBuffer) => b.destroy() };
    this.pool = new BufferPool(allocator);
    this.staging = new BufferPool(allocator);
    this.pipelines = new PipelineCache(this.device, this.errors);
    this.recorder = new Recorder(this.device, this.errors);
    this.pool.onDestroy = () => this.recorder.bindGroups.forget();
    // GPUBufferUsage exists only once Dawn's globals are installed, i.e. after acquireDevice.
    this.storageUsage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  }

  get counters(): Readonly<BackendCounters> {
    return { submits: this.recorder.submits, dispatches: this.recorder.dispatches };
  }

  get policy(): KernelPolicy {
    return this.current;
  }

  withPolicy<T>(override: PolicyOverride, fn: () => T): T {
    const [saved, savedPolicy] = [this.override, this.current];
    this.override = mergeOverrides(saved, override);
    this.current = derivePolicy(this.caps, this.override);
    try {
      return fn();
    } finally {
      [this.override, this.current] = [saved, savedPolicy];
    }
  }

  kernel(spec: KernelSpec): Kernel {
    this.assertAlive();
    return this.pipelines.get(spec);
  }

  dispatch(kernel: Kernel, bindings: Readonly<Record<string, Tensor>>, workgroups: readonly [number, number?, number?], uniforms?: UniformValues): void {
    this.assertAlive();
    const ordered = orderBindings(kernel.iface, bindings, kernel.label).map((b) => ({ index: b.index, buffer: this.bufferOf(b.value) }));
    this.recorder.dispatch(kernel as DawnKernel, ordered, workgroups, checkUniforms(kernel, uniforms));
  }

  empty(shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    this.assertAlive();
    const buf = this.pool.acquire(storageBytes(shape, dtype), this.storageUsage, label);
    const t = new Tensor(this, [...shape], dtype, buf, label);
    if (this.poison) this.fillBits(t, poisonBits(dtype));
    return t;
  }

  zeros(shape: readonly number[], dtype: DType = 'f32', label = 'zeros'): Tensor {
    const t = this.empty(shape, dtype, label);
    this.recorder.clear(this.bufferOf(t), 0, t.buffer.size);
    return t;
  }

  fillBits(t: Tensor, bits: number): void {
    fillWords(this, t, bits);
  }

  fill(t: Tensor, value: number): void {
    this.fillBits(t, fillPattern(t.dtype, value));
  }

  upload(data: HostArray | (() => HostArray), shape: readonly number[], dtype: DType = 'f32', label = 'upload'): Tensor {
    const host = typeof data === 'function' ? data() : data;
    const n = numel(shape);
    if (host.length !== n) throw new Error(`upload ${label}: ${host.length} values for shape [${shape.join(', ')}] (${n})`);
    const t = this.empty(shape, dtype, label);
    this.write(t, host);
    return t;
  }

  write(t: Tensor, data: HostArray): void {
    if (data.length !== t.size) throw new Error(`write ${t.label}: ${data.length} values for ${t.size} elements`);
    // A host write overtakes recorded-but-unsubmitted work, which may still use this
    // buffer's previous contents (pooled reuse): submit that work first.
    if (this.recorder.pending) this.recorder.submit();
    let bytes = hostBytes(t, data);
    // Dawn takes no SharedArrayBuffer (the host optimizer's arrays are shared with its workers).
    if (bytes.buffer instanceof SharedArrayBuffer) bytes = new Uint8Array(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.device.queue.writeBuffer(this.bufferOf(t), 0, bytes.buffer, bytes.byteOffset, Math.ceil(bytes.byteLength / 4) * 4);
  }

  copy(src: Tensor, dst: Tensor, range: CopyRange = {}): void {
    const srcOffset = range.srcOffset ?? 0;
    const bytes = range.bytes ?? src.byteLength - srcOffset;
    this.recorder.copy(this.bufferOf(src), srcOffset, this.bufferOf(dst), range.dstOffset ?? 0, bytes);
  }

  async sync(): Promise<void> {
    this.assertAlive();
    this.recorder.submit();
    await this.device.queue.onSubmittedWorkDone();
    await this.errors.check();
    this.assertAlive();
  }

  async read(t: Tensor): Promise<ReadArray> {
    return (await this.readMany([t]))[0]!;
  }

  /**
   * Download many tensors with ONE submit and one map: their copies join the recorded work (so a
   * step's metrics ride in the step's own submit) and land in one pooled staging buffer.
   */
  async readMany(tensors: readonly Tensor[]): Promise<ReadArray[]> {
    this.assertAlive();
    const offsets: number[] = [];
    let total = 0;
    for (const t of tensors) {
      if (t.isDisposed) throw new Error(`read of disposed tensor ${t.label}`);
      offsets.push(total);
      total += t.byteLength; // 4-byte multiples: copies work in 4-byte units
    }
    if (total === 0) return [];
    const stage = this.staging.acquire(total, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'staging');
    tensors.forEach((t, i) => this.recorder.copy(this.bufferOf(t), 0, stage, offsets[i]!, t.byteLength));
    this.recorder.submit();
    try {
      await stage.mapAsync(GPUMapMode.READ, 0, total);
    } catch (e) {
      await this.errors.check();
      this.assertAlive();
      throw e;
    }
    const raw = stage.getMappedRange(0, total).slice(0);
    stage.unmap();
    this.staging.release(stage);
    await this.errors.check();
    return tensors.map((t, i) => decode(raw, offsets[i]!, t));
  }

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  releaseBuffer(buffer: DeviceBuffer): void {
    this.pool.release(buffer as GPUBuffer);
  }

  region<T>(_name: string, fn: () => T): T {
    return fn();
  }

  /** Staging (readback) buffers, accounted apart from tensors. */
  stagingMemory(): PoolStats {
    return this.staging.snapshot();
  }

  /** Destroy free pooled buffers once the queue is idle. */
  trim(): Promise<void> {
    return this.pool.trim(() => this.device.queue.onSubmittedWorkDone());
  }

  /** The GPUBuffer of a tensor of this runtime. */
  bufferOf(t: Tensor): GPUBuffer {
    if (t.isDisposed) throw new Error(`${t} used after dispose`);
    if (t.rt !== this) throw new Error(`${t} belongs to another runtime`);
    return t.buffer as GPUBuffer;
  }

  private assertAlive(): void {
    if (this.gpu.lost) throw this.gpu.lost;
  }
}

/** A tensor's host data as the bytes its buffer holds (f16 narrowed). */
function hostBytes(t: Tensor, data: HostArray): ArrayBufferView {
  switch (t.dtype) {
    case 'f32':
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    case 'i32':
      return data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
    case 'u32':
      return data instanceof Uint32Array ? data : Uint32Array.from(data as ArrayLike<number>);
    case 'f16': {
      const h = new Uint16Array(Math.ceil(t.size / 2) * 2);
      if (data instanceof Uint16Array) h.set(data);
      else for (let i = 0; i < t.size; i++) h[i] = f32ToF16Bits((data as ArrayLike<number>)[i]!);
      return h;
    }
  }
}

/** View `t`'s bytes at `offset` of a downloaded buffer as its host type (f16 widened to f32). */
function decode(raw: ArrayBuffer, offset: number, t: Tensor): ReadArray {
  switch (t.dtype) {
    case 'f32':
      return new Float32Array(raw, offset, t.size);
    case 'i32':
      return new Int32Array(raw, offset, t.size);
    case 'u32':
      return new Uint32Array(raw, offset, t.size);
    case 'f16': {
      const h = new Uint16Array(raw, offset, t.size);
      const out = new Float32Array(t.size);
      for (let i = 0; i < t.size; i++) out[i] = f16BitsToF32(h[i]!);
      return out;
    }
  }
}

let runtime: Promise<DawnRuntime> | null = null;

/** The process-wide runtime (acquires the device on first call). */
export function getRuntime(options?: AcquireOptions): Promise<DawnRuntime> {
  if (!runtime) {
    runtime = acquireDevice(options).then((gd) => new DawnRuntime(gd));
    runtime.catch(() => (runtime = null));
  }
  return runtime;
}
