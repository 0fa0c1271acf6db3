/**
 * The meta runtime: a Backend that runs the engine's own code on shapes alone, as PyTorch's meta
 * device and JAX's eval_shape do. Buffers come from the same BufferPool (same size classes, same
 * live / peak accounting) but hold no memory; kernels are named and dispatches counted, nothing
 * executes; host data is never built (upload's lazy form is not called). The memory planner
 * (src/train/plan/planner.ts) records the real training step on it, so a plan cannot drift from the
 * engine.
 *
 * What it records for the planner: every acquire and release with its label and the region it
 * happened in (`region()`: forward / backward / update, layer i), readbacks (a readback inside a
 * training step would be a bug in a wrapper), the largest buffer, and limit violations that the
 * Dawn runtime would report as validation errors (a binding over maxStorageBufferBindingSize, a
 * buffer over maxBufferSize, a grid over maxComputeWorkgroupsPerDimension).
 */
import type { DeviceBuffer } from './buffer-pool.ts';
import type { DeviceCaps } from './caps.ts';
import type { PolicyOverride } from './policy.ts';
import type { Kernel, KernelSpec } from './kernel-spec.ts';
import { BaseRuntime, type BoundTensor, type LimitViolation, type ShaderUnit } from './base-runtime.ts';
import type { BackendCounters, DispatchCost, HostArray, ReadArray, Tensor } from './tensor.ts';

export type { LimitViolation } from './base-runtime.ts';

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

const STORAGE = 1;

export class MetaRuntime extends BaseRuntime<MetaBuffer> {
  protected readonly storageUsage = STORAGE;
  private nextId = 1;
  private pending = false;
  private readonly counts: BackendCounters = { submits: 0, dispatches: 0 };
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
  /** Device limits the recorded work exceeds (base-runtime.ts checks them as the Dawn runtime does). */
  readonly violations: LimitViolation[] = [];
  /** Floating-point operations the dispatches reported (DispatchCost), in all and by top-level region. */
  flops = 0;
  readonly flopsByRegion = new Map<string, number>();
  /** The largest buffer handed out (pool bytes) and its label. */
  largest: { label: string; bytes: number } = { label: '', bytes: 0 };

  /** The policy is derived from `caps` exactly as the Dawn runtime derives it from its device's (policy.ts). */
  constructor(caps: DeviceCaps, override: PolicyOverride = {}) {
    super({ ...caps, meta: true }, { create: (size, usage, label) => new MetaBuffer(size, usage, label, this.nextId++), destroy: () => {} }, override);
  }

  get counters(): Readonly<BackendCounters> {
    return { ...this.counts };
  }

  /** Run `fn` with `name` pushed on the region path (events record it). */
  override region<T>(name: string, fn: () => T): T {
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

  /** Only named: nothing is compiled (the interface was read from the specialised WGSL). */
  protected compile(_spec: KernelSpec, unit: ShaderUnit): Kernel {
    return { label: unit.label, iface: unit.iface };
  }

  protected override noteCost(cost: DispatchCost | undefined): void {
    if (!cost) return;
    this.flops += cost.flops;
    const region = this.regionStack[0] ?? '';
    this.flopsByRegion.set(region, (this.flopsByRegion.get(region) ?? 0) + cost.flops);
  }

  protected record(kernel: Kernel, _bindings: readonly BoundTensor[], _workgroups: readonly [number, number, number], _uniforms: ArrayBuffer | null): void {
    this.pending = true;
    this.counts.dispatches++;
    this.kernelCalls.set(kernel.label, (this.kernelCalls.get(kernel.label) ?? 0) + 1);
  }

  /** Recorded for the planner, which reports it (the Dawn runtime throws it). */
  protected limitExceeded(v: LimitViolation): void {
    this.violations.push(v);
  }

  protected override allocated(t: Tensor, buf: MetaBuffer): void {
    if (buf.size > this.largest.bytes) this.largest = { label: t.label, bytes: buf.size };
    const alloc: Allocation = { id: this.nextAlloc++, bytes: buf.size, label: t.label, region: [...this.regionStack] };
    this.held.set(buf.id, alloc);
    this.log('acquire', alloc);
  }

  protected override released(b: MetaBuffer): void {
    const alloc = this.held.get(b.id)!;
    this.held.delete(b.id);
    this.log('release', alloc);
  }

  protected clear(_t: Tensor): void {
    this.pending = true; // the Dawn runtime records a clear
  }

  /** Host data is never built here: a parameter's lazy init is not called. */
  protected materialize(_data: () => HostArray): null {
    return null;
  }

  protected writeHost(_t: Tensor, _data: HostArray | null): void {
    // As on Dawn: a host write after recorded work submits that work first.
    if (this.pending) this.submit();
  }

  protected recordCopy(_src: Tensor, _srcOffset: number, _dst: Tensor, _dstOffset: number, _bytes: number): void {
    this.pending = true;
  }

  async sync(): Promise<void> {
    this.submit();
    this.readbacks.push('sync');
  }

  /** Submits like the Dawn runtime and returns zeros: there are no values here. */
  protected download(tensors: readonly Tensor[]): Promise<ReadArray[]> {
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

  private submit(): void {
    if (!this.pending) return;
    this.pending = false;
    this.counts.submits++;
  }

  private log(kind: PoolEvent['kind'], alloc: Allocation): void {
    if (this.logging) this.events.push({ kind, alloc, live: this.pool.liveBytes });
  }
}
