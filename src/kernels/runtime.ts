/**
 * The Dawn runtime: the Backend (tensor.ts) that runs kernels on a WebGPU device — buffer pool,
 * pipeline cache and command recorder, plus upload and download. One per process on Node
 * (`getRuntime()` in node/dawn.ts), one per page in the browser (src/web/).
 * Validation, the policy and the per-runtime caches are shared with the meta runtime
 * (base-runtime.ts); a device limit exceeded throws a LimitError here, before Dawn's validation.
 */
import type { GpuDevice } from './device.ts';
import { BufferPool, type PoolStats } from './buffer-pool.ts';
import { PipelineCache, type DawnKernel } from './pipeline-cache.ts';
import { Recorder } from './recorder.ts';
import { ErrorSink } from './errors.ts';
import type { PolicyOverride } from './policy.ts';
import type { Kernel, KernelSpec } from './kernel-spec.ts';
import { BaseRuntime, LimitError, type BoundTensor, type LimitViolation, type ShaderUnit } from './base-runtime.ts';
import type { BackendCounters, HostArray, ReadArray, Tensor } from './tensor.ts';
import { f16BitsToF32, f32ToF16Bits } from './f16.ts';

export class DawnRuntime extends BaseRuntime<GPUBuffer> {
  readonly device: GPUDevice;
  readonly pipelines: PipelineCache;
  readonly recorder: Recorder;
  readonly errors: ErrorSink;
  private readonly staging: BufferPool<GPUBuffer>;
  protected readonly storageUsage: number;

  constructor(
    readonly gpu: GpuDevice,
    override: PolicyOverride = {},
  ) {
    const allocator = {
      create: (size: number, usage: number, label: string) => gpu.device.createBuffer({ size, usage, label }),
      destroy: (b: GPUBuffer) => b.destroy(),
    };
    super(gpu.caps, allocator, override);
    this.device = gpu.device;
    this.errors = new ErrorSink(this.device);
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

  protected compile(spec: KernelSpec, unit: ShaderUnit): Kernel {
    return this.pipelines.compile(spec, unit);
  }

  protected record(kernel: Kernel, bindings: readonly BoundTensor[], workgroups: readonly [number, number, number], uniforms: ArrayBuffer | null): void {
    this.recorder.dispatch(
      kernel as DawnKernel,
      bindings.map((b) => ({ index: b.index, buffer: this.bufferOf(b.value) })),
      workgroups,
      uniforms,
    );
  }

  protected limitExceeded(v: LimitViolation): void {
    throw new LimitError(v);
  }

  protected clear(t: Tensor): void {
    this.recorder.clear(this.bufferOf(t), 0, t.buffer.size);
  }

  protected materialize(data: () => HostArray): HostArray {
    return data();
  }

  protected writeHost(t: Tensor, data: HostArray | null): void {
    if (!data) throw new Error(`write ${t.label}: no host data`);
    // A host write overtakes recorded-but-unsubmitted work, which may still use this
    // buffer's previous contents (pooled reuse): submit that work first.
    if (this.recorder.pending) this.recorder.submit();
    let bytes = hostBytes(t, data);
    // Dawn takes no SharedArrayBuffer (the host optimizer's arrays are shared with its workers);
    // a page that is not cross-origin isolated has no SharedArrayBuffer at all.
    if (typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer)
      bytes = new Uint8Array(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.device.queue.writeBuffer(this.bufferOf(t), 0, bytes.buffer, bytes.byteOffset, Math.ceil(bytes.byteLength / 4) * 4);
  }

  protected recordCopy(src: Tensor, srcOffset: number, dst: Tensor, dstOffset: number, bytes: number): void {
    this.recorder.copy(this.bufferOf(src), srcOffset, this.bufferOf(dst), dstOffset, bytes);
  }

  async sync(): Promise<void> {
    this.assertUsable();
    this.recorder.submit();
    await this.device.queue.onSubmittedWorkDone();
    await this.errors.check();
    this.assertUsable();
  }

  /**
   * Download many tensors with ONE submit and one map: their copies join the recorded work (so a
   * step's metrics ride in the step's own submit) and land in one pooled staging buffer.
   */
  protected async download(tensors: readonly Tensor[]): Promise<ReadArray[]> {
    const offsets: number[] = [];
    let total = 0;
    for (const t of tensors) {
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
      this.assertUsable();
      throw e;
    }
    const raw = stage.getMappedRange(0, total).slice(0);
    stage.unmap();
    this.staging.release(stage);
    await this.errors.check();
    return tensors.map((t, i) => decode(raw, offsets[i]!, t));
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
    this.checkTensor(t, 'bufferOf');
    return t.buffer as GPUBuffer;
  }

  /** Destroy the device: a real device loss to Dawn (the training loop's test-only DEVICE_LOST fault point). */
  loseDevice(): void {
    this.device.destroy();
  }

  protected override assertUsable(): void {
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
