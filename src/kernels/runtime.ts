/**
 * The engine's WebGPU runtime: device, buffer pool, pipeline cache and command recorder,
 * plus tensor creation, upload and download. One per process (`getRuntime()`).
 */
import { acquireDevice, type AcquireOptions, type GpuDevice } from './device.ts';
import { BufferPool } from './buffer-pool.ts';
import { PipelineCache, type Kernel, type KernelSpec } from './pipeline-cache.ts';
import { ErrorSink, Recorder, type Binding } from './recorder.ts';
import { Tensor, numel, storageBytes, type DType } from './tensor.ts';
import { f16BitsToF32, f32ToF16Bits } from './f16.ts';

export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array | number[];

export class Runtime {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly recorder: Recorder;
  readonly errors: ErrorSink;
  private readonly staging: BufferPool;
  /** When true, every new tensor buffer is filled with NaN bits first, so a kernel that skips an element is caught. */
  poison = false;
  private readonly storageUsage: number;

  constructor(readonly gpu: GpuDevice) {
    this.device = gpu.device;
    this.errors = new ErrorSink(this.device);
    this.pool = new BufferPool(this.device);
    this.staging = new BufferPool(this.device);
    this.pipelines = new PipelineCache(this.device, this.errors);
    this.recorder = new Recorder(this.device, this.errors);
    this.pool.onDestroy = () => this.recorder.bindGroups.forget();
    // GPUBufferUsage exists only once Dawn's globals are installed, i.e. after acquireDevice.
    this.storageUsage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  }

  kernel(spec: KernelSpec): Kernel {
    this.assertAlive();
    return this.pipelines.get(spec);
  }

  dispatch(kernel: Kernel, bindings: readonly (Binding | Tensor)[], workgroups: readonly [number, number?, number?], uniforms?: ArrayBufferView): void {
    this.assertAlive();
    const b = bindings.map((x) => (x instanceof Tensor ? bufferOf(x) : x));
    this.recorder.dispatch(kernel, b, workgroups, uniforms);
  }

  /** An uninitialised tensor (NaN-poisoned when `poison` is set). */
  empty(shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    this.assertAlive();
    const buf = this.pool.acquire(storageBytes(shape, dtype), this.storageUsage, label);
    const t = new Tensor(this, [...shape], dtype, buf, label);
    if (this.poison) this.fillBits(t, dtype === 'f16' ? 0x7e007e00 : 0x7fc00000);
    return t;
  }

  zeros(shape: readonly number[], dtype: DType = 'f32', label = 'zeros'): Tensor {
    const t = this.empty(shape, dtype, label);
    this.recorder.clear(t.buffer, 0, t.buffer.size);
    return t;
  }

  /** Fill a tensor's whole buffer with a 32-bit pattern, recorded in order with other work. */
  fillBits(t: Tensor, bits: number): void {
    const words = t.buffer.size / 4;
    const k = this.kernel({ shader: 'fill' });
    const u = new Uint32Array([bits >>> 0, words, 0, 0]);
    const groups = Math.ceil(words / 256);
    const gx = Math.min(groups, 65535);
    this.dispatch(k, [t.buffer], [gx, Math.ceil(groups / gx)], u);
  }

  fill(t: Tensor, value: number): void {
    if (t.dtype === 'f32') this.fillBits(t, new Uint32Array(new Float32Array([value]).buffer)[0]!);
    else if (t.dtype === 'f16') {
      const h = f32ToF16Bits(value);
      this.fillBits(t, (h | (h << 16)) >>> 0);
    } else this.fillBits(t, value >>> 0);
  }

  /** Upload host data into a new tensor. */
  upload(data: HostArray, shape: readonly number[], dtype: DType = 'f32', label = 'upload'): Tensor {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`upload ${label}: ${data.length} values for shape [${shape.join(', ')}] (${n})`);
    const t = this.empty(shape, dtype, label);
    this.write(t, data);
    return t;
  }

  /** Overwrite a tensor's contents from the host. */
  write(t: Tensor, data: HostArray): void {
    if (data.length !== t.size) throw new Error(`write ${t.label}: ${data.length} values for ${t.size} elements`);
    // A host write overtakes recorded-but-unsubmitted work, which may still use this
    // buffer's previous contents (pooled reuse): submit that work first.
    if (this.recorder.pending) this.recorder.submit();
    let bytes: ArrayBufferView;
    switch (t.dtype) {
      case 'f32':
        bytes = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
        break;
      case 'i32':
        bytes = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
        break;
      case 'u32':
        bytes = data instanceof Uint32Array ? data : Uint32Array.from(data as ArrayLike<number>);
        break;
      case 'f16': {
        const h = new Uint16Array(Math.ceil(t.size / 2) * 2);
        if (data instanceof Uint16Array) h.set(data);
        else for (let i = 0; i < t.size; i++) h[i] = f32ToF16Bits((data as ArrayLike<number>)[i]!);
        bytes = h;
        break;
      }
    }
    this.device.queue.writeBuffer(t.buffer, 0, bytes.buffer, bytes.byteOffset, Math.ceil(bytes.byteLength / 4) * 4);
  }

  /** Submit recorded work, wait for the queue, and throw any GPU error since the last check. */
  async sync(): Promise<void> {
    this.assertAlive();
    this.recorder.submit();
    await this.device.queue.onSubmittedWorkDone();
    await this.errors.check();
    this.assertAlive();
  }

  /** Download a tensor (submits pending work first). */
  async read(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
    return (await this.readMany([t]))[0]!;
  }

  /**
   * Download many tensors with ONE submit and one map: their copies join the recorded work (so a
   * step's metrics ride in the step's own submit) and land in one pooled staging buffer.
   */
  async readMany(tensors: readonly Tensor[]): Promise<(Float32Array | Int32Array | Uint32Array)[]> {
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
    tensors.forEach((t, i) => this.recorder.copy(t.buffer, 0, stage, offsets[i]!, t.byteLength));
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

  /** Pool statistics of tensor buffers (staging buffers are accounted separately). */
  memory() {
    return this.pool.snapshot();
  }

  stagingMemory() {
    return this.staging.snapshot();
  }

  private assertAlive(): void {
    if (this.gpu.lost) throw this.gpu.lost;
  }
}

/** View `t`'s bytes at `offset` of a downloaded buffer as its host type (f16 widened to f32). */
function decode(raw: ArrayBuffer, offset: number, t: Tensor): Float32Array | Int32Array | Uint32Array {
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

function bufferOf(t: Tensor): GPUBuffer {
  if (t.isDisposed) throw new Error(`${t} used after dispose`);
  return t.buffer;
}

let runtime: Promise<Runtime> | null = null;

/** The process-wide runtime (acquires the device on first call). */
export function getRuntime(options?: AcquireOptions): Promise<Runtime> {
  if (!runtime) {
    runtime = acquireDevice(options).then((gd) => new Runtime(gd));
    runtime.catch(() => (runtime = null));
  }
  return runtime;
}
