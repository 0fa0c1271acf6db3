/**
 * Buffer pool: reuse by size class and usage, with byte accounting. The same pool serves the Dawn
 * runtime (GPU buffers) and the meta runtime (byte counts), so planned and measured bytes come
 * from one piece of code.
 *
 * Release is deferred at the queue level rather than by fences: a released buffer is
 * only handed out again to work recorded *after* the work that used it, and WebGPU's
 * queue order makes the GPU finish the earlier use first. The one thing that jumps
 * ahead of recorded-but-unsubmitted work is a host write (queue.writeBuffer), so the
 * tensor upload path flushes the recorder first (see recorder.ts). Destroying buffers
 * (trim) waits for onSubmittedWorkDone, when the queue no longer uses them.
 */
/** A runtime's buffer, as the pool and tensors see it (a GPUBuffer on Dawn, a byte count on the meta runtime). */
export interface DeviceBuffer {
  readonly size: number;
  readonly usage: number;
  readonly label: string;
}

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  liveBytes: number;
  /** Highest liveBytes seen since the last resetPeak(). */
  peakLiveBytes: number;
  /** Bytes of every GPU buffer the pool owns (live + free). */
  allocatedBytes: number;
  peakAllocatedBytes: number;
  liveBuffers: number;
  freeBuffers: number;
  /** Buffers created / handed out since creation: creations << acquisitions means reuse works. */
  created: number;
  acquired: number;
}

/** Size class: multiples of 256 B up to 4 KiB, then 8 steps per power of two (<= 12.5% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/** How a pool makes and destroys its buffers. */
export interface BufferAllocator<B extends DeviceBuffer> {
  create(size: number, usage: number, label: string): B;
  destroy(buffer: B): void;
}

export class BufferPool<B extends DeviceBuffer = DeviceBuffer> {
  private readonly free = new Map<string, B[]>();
  private readonly live = new Set<B>();
  private stats: PoolStats = {
    liveBytes: 0,
    peakLiveBytes: 0,
    allocatedBytes: 0,
    peakAllocatedBytes: 0,
    liveBuffers: 0,
    freeBuffers: 0,
    created: 0,
    acquired: 0,
  };

  constructor(private readonly allocator: BufferAllocator<B>) {}

  acquire(bytes: number, usage: number, label = 'tensor'): B {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    let buf = this.free.get(key)?.pop();
    if (buf) {
      this.stats.freeBuffers--;
    } else {
      buf = this.allocator.create(size, usage, label);
      this.stats.created++;
      this.stats.allocatedBytes += size;
      this.stats.peakAllocatedBytes = Math.max(this.stats.peakAllocatedBytes, this.stats.allocatedBytes);
    }
    this.live.add(buf);
    this.stats.acquired++;
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    this.stats.peakLiveBytes = Math.max(this.stats.peakLiveBytes, this.stats.liveBytes);
    return buf;
  }

  release(buf: B): void {
    if (!this.live.delete(buf)) throw new Error(`buffer "${buf.label}" released twice or not from this pool`);
    this.stats.liveBuffers--;
    this.stats.liveBytes -= buf.size;
    const key = `${buf.usage}:${buf.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buf);
    this.stats.freeBuffers++;
  }

  /** Called before buffers are destroyed (the recorder forgets bind groups that hold them). */
  onDestroy: (() => void) | null = null;

  /** Destroy every free buffer once `idle` resolves (the queue has finished all submitted work). */
  async trim(idle: () => Promise<void>): Promise<void> {
    const doomed = [...this.free.values()].flat();
    this.free.clear();
    this.stats.freeBuffers = 0;
    await idle();
    if (doomed.length) this.onDestroy?.();
    for (const b of doomed) {
      this.stats.allocatedBytes -= b.size;
      this.allocator.destroy(b);
    }
  }

  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
    this.stats.peakAllocatedBytes = this.stats.allocatedBytes;
  }

  get liveBytes(): number {
    return this.stats.liveBytes;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
