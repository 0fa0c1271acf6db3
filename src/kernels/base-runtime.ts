/**
 * What the two runtimes share (docs/DESIGN.md §2): the Backend of tensor.ts implemented once, so the
 * Dawn runtime (runtime.ts), which runs the work, and the meta runtime (meta-runtime.ts), which only
 * counts bytes for the planner, validate every allocation, dispatch and copy the same way.
 *
 * Checked on both, before anything is recorded:
 *  - a kernel's bindings by name: an unknown name, a buffer the entry point does not use, or a
 *    buffer it uses that is missing throws, naming the kernel and the binding (wgsl-interface.ts);
 *    uniforms by name and type; every bound tensor alive and of this runtime;
 *  - copies: offsets and size multiples of 4 and inside both buffers, else it throws;
 *  - the device limits of the policy (policy.ts: the caps' limits): a grid dimension over
 *    maxComputeWorkgroupsPerDimension, a bound buffer over maxStorageBufferBindingSize, a buffer
 *    over maxBufferSize. These are a LimitViolation: the meta runtime records it for the planner
 *    (which reports it and suggests a fix), the Dawn runtime throws it as a LimitError before Dawn's
 *    own validation would fail the whole submit.
 *
 * Also per runtime, never in module state: the policy, the shader sources (ShaderLibrary), the
 * kernels by specialisation (SpecCache), and the wrappers' generated templates (`memo`).
 */
import { BufferPool, sizeClass, type BufferAllocator, type DeviceBuffer, type PoolStats } from './buffer-pool.ts';
import type { DeviceCaps } from './caps.ts';
import { SpecCache, kernelLabel, type Kernel, type KernelSpec } from './kernel-spec.ts';
import { derivePolicy, mergeOverrides, type KernelPolicy, type PolicyOverride } from './policy.ts';
import { ShaderLibrary, specialize } from './shader-loader.ts';
import { checkUniforms, kernelInterface, orderBindings, type KernelInterface, type UniformValues } from './wgsl-interface.ts';
import { fillPattern, fillWords, poisonBits } from './fill.ts';
import {
  Tensor,
  numel,
  storageBytes,
  type Backend,
  type BackendCounters,
  type CopyRange,
  type DispatchCost,
  type DType,
  type HostArray,
  type ReadArray,
} from './tensor.ts';

/** A device limit a piece of work exceeds. */
export interface LimitViolation {
  limit: 'maxStorageBufferBindingSize' | 'maxBufferSize' | 'maxComputeWorkgroupsPerDimension';
  /** The buffer (for bindings and buffer sizes) or the kernel (for grids). */
  subject: string;
  /** The kernel that binds the buffer, for binding violations. */
  kernel?: string;
  value: number;
  max: number;
}

/** One line naming a violation. */
export function describeViolation(v: LimitViolation): string {
  switch (v.limit) {
    case 'maxStorageBufferBindingSize':
      return `kernel ${v.kernel}: buffer ${v.subject} is ${v.value} bytes, over maxStorageBufferBindingSize (${v.max} bytes per binding)`;
    case 'maxBufferSize':
      return `buffer ${v.subject} would be ${v.value} bytes, over maxBufferSize (${v.max} bytes)`;
    case 'maxComputeWorkgroupsPerDimension':
      return `kernel ${v.subject}: ${v.value} workgroups in one grid dimension, over maxComputeWorkgroupsPerDimension (${v.max})`;
  }
}

/** A device limit exceeded on the Dawn runtime, thrown before Dawn's own validation. */
export class LimitError extends Error {
  constructor(readonly violation: LimitViolation) {
    super(describeViolation(violation));
    this.name = 'LimitError';
  }
}

/** A specialised shader, before a runtime compiles (Dawn) or only names (meta) it. */
export interface ShaderUnit {
  label: string;
  code: string;
  iface: KernelInterface;
}

/** A bound storage buffer of a dispatch, in binding order. */
export interface BoundTensor {
  index: number;
  name: string;
  value: Tensor;
}

export abstract class BaseRuntime<B extends DeviceBuffer> implements Backend {
  poison = false;
  readonly pool: BufferPool<B>;
  /** This runtime's shader sources. */
  readonly shaders = new ShaderLibrary();
  private readonly kernels = new SpecCache<Kernel>();
  private readonly memos = new Map<string, Map<string, unknown>>();
  private override: PolicyOverride;
  private current: KernelPolicy;
  /** Usage flags of tensor buffers (the pool keys on them). */
  protected abstract readonly storageUsage: number;

  constructor(
    readonly caps: DeviceCaps,
    allocator: BufferAllocator<B>,
    override: PolicyOverride = {},
  ) {
    this.pool = new BufferPool<B>(allocator);
    this.override = override;
    this.current = derivePolicy(caps, override);
  }

  abstract get counters(): Readonly<BackendCounters>;

  // ---- the policy ----------------------------------------------------------------------------

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

  /**
   * A value built once per runtime and key: the wrappers' generated shader templates (matmul,
   * attention) and per-runtime tables (rope). `space` names the wrapper.
   */
  memo<T>(space: string, key: string, build: () => T): T {
    let m = this.memos.get(space);
    if (!m) this.memos.set(space, (m = new Map()));
    if (m.has(key)) return m.get(key) as T;
    const v = build();
    m.set(key, v);
    return v;
  }

  // ---- kernels and dispatches ---------------------------------------------------------------

  kernel(spec: KernelSpec): Kernel {
    this.assertUsable();
    return this.kernels.get(spec, (key) => {
      // Fill the template and read its interface the same way on both runtimes, so a bad
      // specialisation or binding fails on the meta runtime too.
      const code = specialize(this.shaders.source(spec.shader), spec.params ?? {}, spec.shader);
      return this.compile(spec, { label: kernelLabel(spec, key), code, iface: kernelInterface(code, spec.entry ?? 'main') });
    });
  }

  dispatch(
    kernel: Kernel,
    bindings: Readonly<Record<string, Tensor>>,
    workgroups: readonly [number, number?, number?],
    uniforms?: UniformValues,
    cost?: DispatchCost,
  ): void {
    this.assertUsable();
    this.noteCost(cost);
    const ordered = orderBindings(kernel.iface, bindings, kernel.label);
    for (const b of ordered) this.checkTensor(b.value, `kernel ${kernel.label}, binding ${b.name}`);
    const encoded = checkUniforms(kernel, uniforms);
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return; // empty problem: nothing to do
    const limits = this.policy.limits;
    const maxGrid = limits.maxComputeWorkgroupsPerDimension;
    for (const g of [x, y, z])
      if (g > maxGrid) this.limitExceeded({ limit: 'maxComputeWorkgroupsPerDimension', subject: kernel.label, value: g, max: maxGrid });
    const maxBinding = limits.maxStorageBufferBindingSize;
    for (const b of ordered)
      if (b.value.buffer.size > maxBinding)
        this.limitExceeded({ limit: 'maxStorageBufferBindingSize', subject: b.value.label, kernel: kernel.label, value: b.value.buffer.size, max: maxBinding });
    this.record(kernel, ordered, [x, y, z], encoded);
  }

  // ---- tensors ------------------------------------------------------------------------------

  /** An uninitialised tensor (NaN-poisoned when `poison` is set). */
  empty(shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    this.assertUsable();
    const bytes = storageBytes(shape, dtype);
    const maxBuffer = this.policy.limits.maxBufferSize;
    const size = sizeClass(bytes);
    if (size > maxBuffer) this.limitExceeded({ limit: 'maxBufferSize', subject: label, value: size, max: maxBuffer });
    const buf = this.pool.acquire(bytes, this.storageUsage, label);
    const t = new Tensor(this, [...shape], dtype, buf, label);
    this.allocated(t, buf);
    if (this.poison) this.fillBits(t, poisonBits(dtype));
    return t;
  }

  zeros(shape: readonly number[], dtype: DType = 'f32', label = 'zeros'): Tensor {
    const t = this.empty(shape, dtype, label);
    this.clear(t);
    return t;
  }

  fillBits(t: Tensor, bits: number): void {
    fillWords(this, t, bits);
  }

  fill(t: Tensor, value: number): void {
    this.fillBits(t, fillPattern(t.dtype, value));
  }

  upload(data: HostArray | (() => HostArray), shape: readonly number[], dtype: DType = 'f32', label = 'upload'): Tensor {
    const host = typeof data === 'function' ? this.materialize(data) : data;
    const n = numel(shape);
    if (host && host.length !== n) throw new Error(`upload ${label}: ${host.length} values for shape [${shape.join(', ')}] (${n})`);
    const t = this.empty(shape, dtype, label);
    this.writeHost(t, host);
    return t;
  }

  write(t: Tensor, data: HostArray): void {
    this.assertUsable();
    this.checkTensor(t, `write ${t.label}`);
    if (data.length !== t.size) throw new Error(`write ${t.label}: ${data.length} values for ${t.size} elements`);
    this.writeHost(t, data);
  }

  copy(src: Tensor, dst: Tensor, range: CopyRange = {}): void {
    this.assertUsable();
    this.checkTensor(src, `copy ${src} -> ${dst}`);
    this.checkTensor(dst, `copy ${src} -> ${dst}`);
    const srcOffset = range.srcOffset ?? 0;
    const dstOffset = range.dstOffset ?? 0;
    const bytes = range.bytes ?? src.byteLength - srcOffset;
    const aligned = [srcOffset, dstOffset, bytes].every((v) => Number.isInteger(v) && v >= 0 && v % 4 === 0);
    if (!aligned || srcOffset + bytes > src.buffer.size || dstOffset + bytes > dst.buffer.size) {
      throw new Error(
        `copy ${src} -> ${dst}: ${bytes} bytes from byte ${srcOffset} to byte ${dstOffset} out of range (buffers of ${src.buffer.size} and ${dst.buffer.size} bytes; offsets and sizes are multiples of 4)`,
      );
    }
    this.recordCopy(src, srcOffset, dst, dstOffset, bytes);
  }

  async read(t: Tensor): Promise<ReadArray> {
    return (await this.readMany([t]))[0]!;
  }

  async readMany(tensors: readonly Tensor[]): Promise<ReadArray[]> {
    this.assertUsable();
    for (const t of tensors) {
      if (t.isDisposed) throw new Error(`read of disposed tensor ${t.label}`);
      this.checkTensor(t, 'read');
    }
    return this.download(tensors);
  }

  abstract sync(): Promise<void>;

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  releaseBuffer(buffer: DeviceBuffer): void {
    this.pool.release(buffer as B);
    this.released(buffer as B);
  }

  region<T>(_name: string, fn: () => T): T {
    return fn();
  }

  /** A tensor a piece of work uses must be alive and of this runtime; `context` names the work. */
  protected checkTensor(t: Tensor, context: string): void {
    if (t.isDisposed) throw new Error(`${t} used after dispose (${context})`);
    if (t.rt !== this) throw new Error(`${t} belongs to another runtime (${context})`);
  }

  // ---- what each runtime does ---------------------------------------------------------------

  /** Throw if the runtime can no longer work (a lost device). */
  protected assertUsable(): void {}
  /** Compile (Dawn) or only name (meta) a specialised shader. */
  protected abstract compile(spec: KernelSpec, unit: ShaderUnit): Kernel;
  /** A dispatch's cost, before the empty-grid check (the meta runtime sums it). */
  protected noteCost(_cost: DispatchCost | undefined): void {}
  /** Record a validated, non-empty dispatch. */
  protected abstract record(
    kernel: Kernel,
    bindings: readonly BoundTensor[],
    workgroups: readonly [number, number, number],
    uniforms: ArrayBuffer | null,
  ): void;
  /** A device limit exceeded: recorded for the planner (meta) or thrown (Dawn). */
  protected abstract limitExceeded(v: LimitViolation): void;
  /** After a tensor's buffer is acquired (the meta runtime logs it). */
  protected allocated(_t: Tensor, _buffer: B): void {}
  /** After a buffer went back to the pool. */
  protected released(_buffer: B): void {}
  /** Record a clear of the tensor's whole buffer. */
  protected abstract clear(t: Tensor): void;
  /** The host array of an upload's lazy data, or null where it is never needed (meta). */
  protected abstract materialize(data: () => HostArray): HostArray | null;
  /** Write host data into a tensor after recorded work (null: the meta runtime's upload of lazy data). */
  protected abstract writeHost(t: Tensor, data: HostArray | null): void;
  protected abstract recordCopy(src: Tensor, srcOffset: number, dst: Tensor, dstOffset: number, bytes: number): void;
  /** Download validated tensors (one submit). */
  protected abstract download(tensors: readonly Tensor[]): Promise<ReadArray[]>;
}
