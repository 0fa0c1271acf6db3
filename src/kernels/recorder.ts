/**
 * Command recorder: many dispatches go into one encoder and one submit. Small per-dispatch
 * parameters go into a host-side uniform arena that is written once per submit.
 *
 * Errors: every recording runs inside validation + out-of-memory error scopes; the scopes'
 * results are collected by an ErrorSink and thrown, naming the kernels, at the next sync
 * point (a readback or an explicit `sync()`). Checking per dispatch would cost a round trip
 * each; per submit keeps the hot path free of waits.
 */
import type { ErrorSink } from './errors.ts';
import type { DawnKernel } from './pipeline-cache.ts';

/**
 * A per-dispatch timer attached to the recorder (the profiler): `timestampWrites(label)` per
 * dispatch, `resolve(encoder)` before finish and `submitted()` after.
 */
export interface DispatchTimer {
  timestampWrites(label: string): GPUComputePassTimestampWrites;
  resolve(encoder: GPUCommandEncoder): void;
  submitted(): void;
}

/** One uniform slot per dispatch; 256 B is WebGPU's minimum uniform offset alignment. */
const SLOT = 256;
const CHUNK_SLOTS = 256;
/** Cached bind groups before the cache starts over (a training step uses a few hundred to a few thousand). */
const MAX_BIND_GROUPS = 16384;

/**
 * Bind groups built once per (layout, buffers, ranges). A training step recycles the same pooled
 * buffers in the same order every step, and its uniform slots too, so from the second step on every
 * dispatch finds its groups here. Entries hold their buffers: forget() when buffers are destroyed.
 */
class BindGroupCache {
  private groups = new Map<GPUBindGroupLayout, Map<string, GPUBindGroup>>();
  private ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private size = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly device: GPUDevice) {}

  private id(b: GPUBuffer): number {
    let i = this.ids.get(b);
    if (i === undefined) this.ids.set(b, (i = this.nextId++));
    return i;
  }

  get(layout: GPUBindGroupLayout, bindings: readonly { index: number; resource: GPUBufferBinding }[], label: string): GPUBindGroup {
    let key = '';
    for (const b of bindings) key += `${b.index}=${this.id(b.resource.buffer)}:${b.resource.offset ?? 0}:${b.resource.size ?? -1},`;
    let byKey = this.groups.get(layout);
    if (!byKey) this.groups.set(layout, (byKey = new Map()));
    let g = byKey.get(key);
    if (g) {
      this.hits++;
      return g;
    }
    this.misses++;
    if (this.size >= MAX_BIND_GROUPS) {
      this.forget();
      this.groups.set(layout, (byKey = new Map()));
    }
    g = this.device.createBindGroup({ layout, entries: bindings.map((b) => ({ binding: b.index, resource: b.resource })), label });
    byKey.set(key, g);
    this.size++;
    return g;
  }

  forget(): void {
    this.groups.clear();
    this.size = 0;
  }
}

export class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private labels: string[] = [];
  private chunks: { buffer: GPUBuffer; host: ArrayBuffer }[] = [];
  private chunkInUse = 0;
  private slotInChunk = 0;
  /** Counters for tests and the profiler. */
  submits = 0;
  dispatches = 0;
  readonly bindGroups: BindGroupCache;
  /**
   * Set by the profiler: each dispatch then gets its own timestamped pass. Null (the default)
   * costs one property check per dispatch and per submit.
   */
  timer: DispatchTimer | null = null;
  /** The timer that holds queries of the current recording (it may be detached mid-recording). */
  private timedIn: DispatchTimer | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly errors: ErrorSink,
  ) {
    this.bindGroups = new BindGroupCache(device);
  }

  get pending(): boolean {
    return this.encoder !== null;
  }

  private enc(): GPUCommandEncoder {
    if (!this.encoder) {
      // The scopes stay open for the whole recording, so bind-group creation and
      // buffer allocation errors are caught too; Dawn's message names the labelled object.
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder({ label: 'webgpu-moe step' });
      this.chunkInUse = 0;
      this.slotInChunk = 0;
    }
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.enc().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Reserve a uniform slot and return its binding. */
  private uniformSlot(data: ArrayBufferView): GPUBufferBinding {
    if (data.byteLength > SLOT) throw new Error(`uniform params of ${data.byteLength} B exceed the ${SLOT} B slot`);
    if (this.slotInChunk === CHUNK_SLOTS) {
      this.chunkInUse++;
      this.slotInChunk = 0;
    }
    if (this.chunkInUse === this.chunks.length) {
      this.chunks.push({
        buffer: this.device.createBuffer({ size: SLOT * CHUNK_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniform arena' }),
        host: new ArrayBuffer(SLOT * CHUNK_SLOTS),
      });
    }
    const chunk = this.chunks[this.chunkInUse]!;
    const offset = this.slotInChunk * SLOT;
    new Uint8Array(chunk.host, offset, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.slotInChunk++;
    return { buffer: chunk.buffer, offset, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16) };
  }

  /** Record one dispatch: storage buffers at their binding indices, the encoded uniform block (or null). */
  dispatch(
    kernel: DawnKernel,
    bindings: readonly { index: number; buffer: GPUBuffer }[],
    workgroups: readonly [number, number?, number?],
    uniforms: ArrayBuffer | null,
  ): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return; // empty problem: nothing to do
    this.enc();
    const group0 = this.bindGroups.get(
      kernel.storageLayout,
      bindings.map((b) => ({ index: b.index, resource: { buffer: b.buffer } })),
      kernel.label,
    );
    const timer = this.timer;
    const pass = timer ? this.timedPass(timer, kernel.label) : this.computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, group0);
    if (kernel.uniformLayout) {
      if (!uniforms) throw new Error(`kernel ${kernel.label} declares uniform params but none were given`);
      const group1 = this.bindGroups.get(kernel.uniformLayout, [{ index: 0, resource: this.uniformSlot(new Uint8Array(uniforms)) }], `${kernel.label} params`);
      pass.setBindGroup(1, group1);
    }
    pass.dispatchWorkgroups(x, y, z);
    // A timed pass holds exactly one dispatch, so its timestamps bracket that dispatch alone.
    if (timer) this.endPass();
    this.labels.push(kernel.label);
    this.dispatches++;
  }

  private timedPass(timer: DispatchTimer, label: string): GPUComputePassEncoder {
    this.endPass();
    this.timedIn = timer;
    this.pass = this.enc().beginComputePass({ timestampWrites: timer.timestampWrites(label) });
    return this.pass;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.labels.push(`copy ${src.label} -> ${dst.label}`);
  }

  clear(buf: GPUBuffer, offset = 0, bytes?: number): void {
    this.endPass();
    this.enc().clearBuffer(buf, offset, bytes);
  }

  /** Submit everything recorded so far (no wait). */
  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    for (let i = 0; i <= this.chunkInUse && i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      const used = i < this.chunkInUse ? SLOT * CHUNK_SLOTS : this.slotInChunk * SLOT;
      if (used > 0) this.device.queue.writeBuffer(c.buffer, 0, c.host, 0, used);
    }
    const labels = this.labels;
    const subject = labels.length <= 6 ? labels.join(', ') : `${labels.slice(0, 6).join(', ')} … (+${labels.length - 6} more)`;
    const timed = this.timedIn;
    timed?.resolve(this.encoder); // resolve + copy of this recording's timestamps ride in the same submit
    this.device.queue.submit([this.encoder.finish()]);
    if (timed) {
      this.timedIn = null;
      timed.submitted();
    }
    this.errors.watch(this.device.popErrorScope(), `submit of [${subject}]`, 'validation');
    this.errors.watch(this.device.popErrorScope(), `submit of [${subject}]`, 'out-of-memory');
    this.encoder = null;
    this.labels = [];
    this.submits++;
  }
}
