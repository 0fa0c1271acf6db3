/**
 * The meta runtime: a Backend that runs the engine's own code on shapes alone, as PyTorch's meta
 * device and JAX's eval_shape do. Buffers come from the same BufferPool (same size classes, same
 * live / peak accounting) but hold no memory; kernels are named and dispatches counted, nothing
 * executes; host data is never built (upload's lazy form is not called). The memory planner
 * (src/train/planner.ts) records the real training step on it, so a plan cannot drift from the
 * engine.
 *
 * What it records for the planner: every acquire and release with its label and the region it
 * happened in (`region()`: forward / backward / update, layer i), readbacks (a readback inside a
 * training step would be a bug in a wrapper), the largest buffer, and limit violations that the
 * Dawn runtime would report as validation errors (a binding over maxStorageBufferBindingSize, a
 * buffer over maxBufferSize, a grid over maxComputeWorkgroupsPerDimension).
 */
import { BufferPool, type DeviceBuffer, type PoolStats } from './buffer-pool.ts';
import type { DeviceCaps } from './caps.ts';
import { derivePolicy, mergeOverrides, type KernelPolicy, type PolicyOverride } from './policy.ts';
import { SpecCache, kernelLabel, type Kernel, type KernelSpec } from './kernel-spec.ts';
import { shaderSource, specialize } from './shader-loader.ts';
import { checkUniforms, kernelInterface, orderBindings, type UniformValues } from './wgsl-interface.ts';
import { fillPattern, fillWords } from './fill.ts';
import { Tensor, numel, storageBytes, type Backend, type BackendCounters, type DispatchCost, type CopyRange, type DType, type HostArray, type ReadArray } from './tensor.ts';

class MetaBuffer implements DeviceBuffer {
  constructor(
    readonly size: number,
    readonly usage: number,
    readonly label: string,
    readonly id: number,
  ) {}
}

/** One allocation: a tensor's buffer, from acquire to release. */
export interface Allocation {
  /** Allocation number, unique over the runtime's life (pooled buffers are reused, these are not). */
  id: number;
  /** Pool bytes (the size class). */
  bytes: number;
  label: string;
  /** Region path when it was made, e.g. ['backward', 'layer 3']. */
  region: readonly string[];
}

/** One pool event of the log: an allocation made (acquire) or freed (release). */
export interface PoolEvent {
  kind: 'acquire' | 'release';
  alloc: Allocation;
  /** Live bytes after the event. */
  live: number;
}

export interface LimitViolation {
  limit: 'maxStorageBufferBindingSize' | 'maxBufferSize' | 'maxComputeWorkgroupsPerDimension';
  /** The buffer (for bindings and buffer sizes) or the kernel (for grids). */
  subject: string;
  /** The kernel that binds the buffer, for binding violations. */
  kernel?: string;
  value: number;
  max: number;
}

const STORAGE = 1;

export class MetaRuntime implements Backend {
  readonly caps: DeviceCaps;
  poison = false;
  readonly pool: BufferPool<MetaBuffer>;
  private nextId = 1;
  private pending = false;
  private readonly counts: BackendCounters = { submits: 0, dispatches: 0 };
  private readonly kernels = new SpecCache<Kernel>();
  /** The allocation each live buffer holds (pooled buffers keep their first label; allocations carry the tensor's). */
  private readonly held = new Map<number, Allocation>();
  private nextAlloc = 1;
  private regionStack: string[] = [];
  /** The pool's event log, while `logging` is on (the planner turns it on for the steps it measures). */
  events: PoolEvent[] = [];
  logging = false;
  /** Called when a region is entered and left, with its full path. */
  onRegion: ((path: readonly string[], enter: boolean) => void) | null = null;
  /** Readbacks and syncs, in order, with what they read. */
  readonly readbacks: string[] = [];
  /** Dispatches per kernel label. */
  readonly kernelCalls = new Map<string, number>();
  readonly violations: LimitViolation[] = [];
  /** Floating-point operations the dispatches reported (DispatchCost), in all and by top-level region. */
  flops = 0;
  readonly flopsByRegion = new Map<string, number>();
  /** The largest buffer handed out (pool bytes) and its label. */
  largest: { label: string; bytes: number } = { label: '', bytes: 0 };

  private override: PolicyOverride;
  private current: KernelPolicy;

  /** The policy is derived from `caps` exactly as the Dawn runtime derives it from its device's (policy.ts). */
  constructor(caps: DeviceCaps, override: PolicyOverride = {}) {
    this.caps = { ...caps, meta: true };
    this.override = override;
    this.current = derivePolicy(this.caps, override);
    this.pool = new BufferPool<MetaBuffer>({
      create: (size, usage, label) => new MetaBuffer(size, usage, label, this.nextId++),
      destroy: () => {},
    });
  }

  get counters(): Readonly<BackendCounters> {
    return { ...this.counts };
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

  /** Run `fn` with `name` pushed on the region path (events record it). */
  region<T>(name: string, fn: () => T): T {
    this.regionStack.push(name);
    this.onRegion?.(this.regionStack, true);
    try {
      return fn();
    } finally {
      this.onRegion?.(this.regionStack, false);
      this.regionStack.pop();
    }
  }

  /** The allocation a live tensor holds. */
  allocationOf(t: Tensor): Allocation {
    const a = this.held.get((t.buffer as MetaBuffer).id);
    if (!a || t.isDisposed) throw new Error(`${t} is not live on this meta runtime`);
    return a;
  }

  /** Every live allocation, oldest first. */
  liveAllocations(): Allocation[] {
    return [...this.held.values()].sort((a, b) => a.id - b.id);
  }

  kernel(spec: KernelSpec): Kernel {
    return this.kernels.get(spec, (key) => {
      // Fill the template and read its interface as the Dawn runtime does, so a bad
      // specialisation or binding fails here too.
      const code = specialize(shaderSource(spec.shader), spec.params ?? {}, spec.shader);
      return { label: kernelLabel(spec, key), iface: kernelInterface(code, spec.entry ?? 'main') };
    });
  }

  dispatch(kernel: Kernel, bindings: Readonly<Record<string, Tensor>>, workgroups: readonly [number, number?, number?], uniforms?: UniformValues, cost?: DispatchCost): void {
    if (cost) {
      this.flops += cost.flops;
      const region = this.regionStack[0] ?? '';
      this.flopsByRegion.set(region, (this.flopsByRegion.get(region) ?? 0) + cost.flops);
    }
    const ordered = orderBindings(kernel.iface, bindings, kernel.label).map((b) => b.value);
    checkUniforms(kernel, uniforms);
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxGrid = this.caps.limits.maxComputeWorkgroupsPerDimension;
    for (const g of [x, y, z]) if (g > maxGrid) this.violations.push({ limit: 'maxComputeWorkgroupsPerDimension', subject: kernel.label, value: g, max: maxGrid });
    const maxBinding = this.caps.limits.maxStorageBufferBindingSize;
    for (const t of ordered) {
      if (t.isDisposed) throw new Error(`${t} used after dispose (kernel ${kernel.label})`);
      if (t.buffer.size > maxBinding) this.violations.push({ limit: 'maxStorageBufferBindingSize', subject: t.label, kernel: kernel.label, value: t.buffer.size, max: maxBinding });
    }
    this.pending = true;
    this.counts.dispatches++;
    this.kernelCalls.set(kernel.label, (this.kernelCalls.get(kernel.label) ?? 0) + 1);
  }

  empty(shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    const bytes = storageBytes(shape, dtype);
    const buf = this.pool.acquire(bytes, STORAGE, label);
    if (buf.size > this.largest.bytes) this.largest = { label, bytes: buf.size };
    if (buf.size > this.caps.limits.maxBufferSize) this.violations.push({ limit: 'maxBufferSize', subject: label, value: buf.size, max: this.caps.limits.maxBufferSize });
    const alloc: Allocation = { id: this.nextAlloc++, bytes: buf.size, label, region: [...this.regionStack] };
    this.held.set(buf.id, alloc);
    this.log('acquire', alloc);
    return new Tensor(this, [...shape], dtype, buf, label);
  }

  zeros(shape: readonly number[], dtype: DType = 'f32', label = 'zeros'): Tensor {
    const t = this.empty(shape, dtype, label);
    this.pending = true; // the Dawn runtime records a clear
    return t;
  }

  fillBits(t: Tensor, bits: number): void {
    fillWords(this, t, bits);
  }

  fill(t: Tensor, value: number): void {
    this.fillBits(t, fillPattern(t.dtype, value));
  }

  upload(data: HostArray | (() => HostArray), shape: readonly number[], dtype: DType = 'f32', label = 'upload'): Tensor {
    if (typeof data !== 'function' && data.length !== numel(shape)) throw new Error(`upload ${label}: ${data.length} values for shape [${shape.join(', ')}] (${numel(shape)})`);
    const t = this.empty(shape, dtype, label);
    this.write(t);
    return t;
  }

  write(t: Tensor, data?: HostArray): void {
    if (data && data.length !== t.size) throw new Error(`write ${t.label}: ${data.length} values for ${t.size} elements`);
    // As on Dawn: a host write after recorded work submits that work first.
    if (this.pending) this.submit();
  }

  copy(src: Tensor, dst: Tensor, range: CopyRange = {}): void {
    if (src.isDisposed || dst.isDisposed) throw new Error(`copy ${src} -> ${dst}: tensor used after dispose`);
    const bytes = range.bytes ?? src.byteLength - (range.srcOffset ?? 0);
    if ((range.srcOffset ?? 0) + bytes > src.buffer.size || (range.dstOffset ?? 0) + bytes > dst.buffer.size) throw new Error(`copy ${src} -> ${dst}: ${bytes} bytes out of range`);
    this.pending = true;
  }

  async sync(): Promise<void> {
    this.submit();
    this.readbacks.push('sync');
  }

  async read(t: Tensor): Promise<ReadArray> {
    return (await this.readMany([t]))[0]!;
  }

  /** Submits like the Dawn runtime and returns zeros: there are no values here. */
  readMany(tensors: readonly Tensor[]): Promise<ReadArray[]> {
    for (const t of tensors) if (t.isDisposed) throw new Error(`read of disposed tensor ${t.label}`);
    this.submit();
    this.readbacks.push(tensors.map((t) => t.label).join(', '));
    return Promise.resolve(
      tensors.map((t) => {
        switch (t.dtype) {
          case 'i32':
            return new Int32Array(t.size);
          case 'u32':
            return new Uint32Array(t.size);
          default:
            return new Float32Array(t.size);
        }
      }),
    );
  }

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  releaseBuffer(buffer: DeviceBuffer): void {
    const b = buffer as MetaBuffer;
    this.pool.release(b);
    const alloc = this.held.get(b.id)!;
    this.held.delete(b.id);
    this.log('release', alloc);
  }

  private submit(): void {
    if (!this.pending) return;
    this.pending = false;
    this.counts.submits++;
  }

  private log(kind: PoolEvent['kind'], alloc: Allocation): void {
    if (this.logging) this.events.push({ kind, alloc, live: this.pool.liveBytes });
  }
}
