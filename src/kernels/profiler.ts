/**
 * GPU profiler: per-dispatch GPU time from timestamp queries, summed per kernel label, op type
 * ('matmul-blocked:main', the label up to '#') or shader file ('matmul-blocked', the label up to ':').
 *
 * While attached to the Recorder (`resume()`), every dispatch runs in its own compute pass whose
 * timestampWrites bracket it. At submit the recorder asks for the used queries to be resolved
 * and copied into mappable buffers inside the same command buffer; after the submit those are
 * mapped asynchronously (no wait on the hot path) and the durations are credited to the labels
 * recorded for that submit. `flush()` awaits the readbacks still in flight.
 *
 * Its buffers come from device.createBuffer directly, outside the tensor and staging pools, so
 * memory accounting is the same with and without profiling. Copies and clears are not timed
 * (timestamps inside an encoder but outside a pass need a Chromium-only feature).
 *
 * Dawn rounds timestamps to 65.5 us unless the instance was created with
 * 'disable-dawn-features=timestamp_quantization' (AcquireOptions.preciseTimestamps).
 */
import type { DawnRuntime } from './runtime.ts';
import type { DispatchTimer } from './recorder.ts';

/** WebGPU caps a query set at 4096 queries: 2048 dispatches per set; a submit uses as many sets as it needs. */
const QUERIES_PER_SET = 4096;

/** One query set with its resolve and readback buffers; in flight from first use until read back. */
interface Slot {
  set: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
  /** Queries written in the current recording (2 per dispatch). */
  used: number;
}

/** What one submit timed: the slots in order, and one label per dispatch (pair of queries). */
interface Batch {
  slots: Slot[];
  labels: string[];
}

export interface LabelStats {
  calls: number;
  totalNs: number;
  minNs: number;
  maxNs: number;
}

export type GroupBy = 'label' | 'op' | 'shader';

export interface ProfileRow {
  /** The label, op type or shader file, according to the grouping. */
  name: string;
  calls: number;
  totalMs: number;
  meanUs: number;
  minUs: number;
  maxUs: number;
  /** Fraction of the summed GPU time of all timed dispatches. */
  share: number;
}

export interface ProfileSummary {
  groupBy: GroupBy;
  rows: ProfileRow[];
  /** Summed GPU time of the timed dispatches. */
  gpuMs: number;
  dispatches: number;
  submits: number;
  /** Wall-clock time between resume() and pause() calls, and how many such windows (steps). */
  wallMs: number;
  windows: number;
  /** gpuMs / wallMs (0 without wall time). */
  busyFraction: number;
  /** Dispatches whose timestamps could not be read (failed submit) or ran backwards. */
  lostDispatches: number;
}

/** Op type of a kernel label: 'matmul-blocked:main#1a2b3c4d' -> 'matmul-blocked:main'. */
export function opType(label: string): string {
  const i = label.indexOf('#');
  return i < 0 ? label : label.slice(0, i);
}

/** Shader file of a kernel label: 'matmul-blocked:main#1a2b3c4d' -> 'matmul-blocked'. */
export function shaderFile(label: string): string {
  const i = label.search(/[:#]/);
  return i < 0 ? label : label.slice(0, i);
}

function keyOf(label: string, by: GroupBy): string {
  return by === 'label' ? label : by === 'op' ? opType(label) : shaderFile(label);
}

/** Group per-label statistics and sort by total time, largest first. Pure, so tests can feed it directly. */
export function summarize(stats: ReadonlyMap<string, LabelStats>, by: GroupBy): { rows: ProfileRow[]; gpuMs: number; dispatches: number } {
  const groups = new Map<string, LabelStats>();
  let totalNs = 0;
  let dispatches = 0;
  for (const [label, s] of stats) {
    const key = keyOf(label, by);
    const g = groups.get(key);
    if (g) {
      g.calls += s.calls;
      g.totalNs += s.totalNs;
      g.minNs = Math.min(g.minNs, s.minNs);
      g.maxNs = Math.max(g.maxNs, s.maxNs);
    } else groups.set(key, { ...s });
    totalNs += s.totalNs;
    dispatches += s.calls;
  }
  const rows = [...groups].map(([name, g]) => ({
    name,
    calls: g.calls,
    totalMs: g.totalNs / 1e6,
    meanUs: g.calls ? g.totalNs / g.calls / 1e3 : 0,
    minUs: g.minNs / 1e3,
    maxUs: g.maxNs / 1e3,
    share: totalNs > 0 ? g.totalNs / totalNs : 0,
  }));
  rows.sort((a, b) => b.totalMs - a.totalMs || a.name.localeCompare(b.name));
  return { rows, gpuMs: totalNs / 1e6, dispatches };
}

export class GpuProfiler implements DispatchTimer {
  private readonly free: Slot[] = [];
  private current: Batch | null = null;
  /** The batch resolved into the command buffer being submitted. */
  private resolved: Batch | null = null;
  private readonly inflight = new Set<Promise<void>>();
  private readonly stats = new Map<string, LabelStats>();
  private submits = 0;
  private lost = 0;
  private wallMs = 0;
  private windows = 0;
  private windowStart: number | null = null;

  /** False when the device lacks 'timestamp-query': resume() then does nothing. */
  readonly supported: boolean;

  constructor(private readonly rt: DawnRuntime) {
    this.supported = rt.caps.timestampQuery;
  }

  /** Attach to the recorder: dispatches recorded from now on are timed; starts a wall-clock window. */
  resume(): void {
    if (this.windowStart !== null) return;
    if (this.supported) this.rt.recorder.timer = this;
    this.windowStart = performance.now();
  }

  /** Detach (dispatches already recorded stay timed) and close the wall-clock window. */
  pause(): void {
    if (this.windowStart === null) return;
    if (this.rt.recorder.timer === this) this.rt.recorder.timer = null;
    this.wallMs += performance.now() - this.windowStart;
    this.windows++;
    this.windowStart = null;
  }

  timestampWrites(label: string): GPUComputePassTimestampWrites {
    const batch = (this.current ??= { slots: [], labels: [] });
    let slot = batch.slots[batch.slots.length - 1];
    if (!slot || slot.used === QUERIES_PER_SET) {
      slot = this.takeSlot();
      batch.slots.push(slot);
    }
    const at = slot.used;
    slot.used += 2;
    batch.labels.push(label);
    return { querySet: slot.set, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 };
  }

  resolve(encoder: GPUCommandEncoder): void {
    const batch = this.current;
    this.current = null;
    if (!batch) return;
    for (const s of batch.slots) {
      encoder.resolveQuerySet(s.set, 0, s.used, s.resolve, 0);
      encoder.copyBufferToBuffer(s.resolve, 0, s.read, 0, s.used * 8);
    }
    this.resolved = batch;
  }

  submitted(): void {
    const batch = this.resolved;
    this.resolved = null;
    if (!batch) return;
    this.submits++;
    const p = this.readBack(batch).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Wait for every timed submit's timestamps to be read and credited. */
  async flush(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
  }

  /** Forget collected timings (keeps the query sets for reuse). */
  reset(): void {
    this.stats.clear();
    this.submits = 0;
    this.lost = 0;
    this.wallMs = 0;
    this.windows = 0;
  }

  /** Per-label statistics collected so far (after flush() for complete numbers). */
  labelStats(): ReadonlyMap<string, LabelStats> {
    return this.stats;
  }

  summary(by: GroupBy = 'op'): ProfileSummary {
    const { rows, gpuMs, dispatches } = summarize(this.stats, by);
    return {
      groupBy: by,
      rows,
      gpuMs,
      dispatches,
      submits: this.submits,
      wallMs: this.wallMs,
      windows: this.windows,
      busyFraction: this.wallMs > 0 ? gpuMs / this.wallMs : 0,
      lostDispatches: this.lost,
    };
  }

  /** Release the query sets and buffers (detaches first). Call after flush(). */
  destroy(): void {
    this.pause();
    for (const s of this.free.splice(0)) {
      s.set.destroy();
      s.resolve.destroy();
      s.read.destroy();
    }
  }

  private takeSlot(): Slot {
    const reuse = this.free.pop();
    if (reuse) {
      reuse.used = 0;
      return reuse;
    }
    const device = this.rt.device;
    return {
      set: device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET, label: 'profiler timestamps' }),
      resolve: device.createBuffer({ size: QUERIES_PER_SET * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'profiler resolve' }),
      read: device.createBuffer({ size: QUERIES_PER_SET * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'profiler readback' }),
      used: 0,
    };
  }

  private async readBack(batch: Batch): Promise<void> {
    const results = await Promise.allSettled(batch.slots.map((s) => s.read.mapAsync(GPUMapMode.READ, 0, s.used * 8)));
    let li = 0;
    batch.slots.forEach((s, i) => {
      const pairs = s.used / 2;
      if (results[i]!.status === 'fulfilled') {
        const t = new BigUint64Array(s.read.getMappedRange(0, s.used * 8));
        for (let q = 0; q < pairs; q++) this.credit(batch.labels[li + q]!, t[2 * q]!, t[2 * q + 1]!);
        s.read.unmap();
      } else this.lost += pairs; // the submit failed (its error surfaces through the ErrorSink)
      li += pairs;
      this.free.push(s);
    });
  }

  private credit(label: string, begin: bigint, end: bigint): void {
    // A zero begin or a backwards pair means the queries were never written (or the clock wrapped).
    if (begin === 0n || end < begin) {
      this.lost++;
      return;
    }
    const ns = Number(end - begin);
    const s = this.stats.get(label);
    if (s) {
      s.calls++;
      s.totalNs += ns;
      if (ns < s.minNs) s.minNs = ns;
      if (ns > s.maxNs) s.maxNs = ns;
    } else this.stats.set(label, { calls: 1, totalNs: ns, minNs: ns, maxNs: ns });
  }
}

/** A table of the top rows by total GPU time, with a header line comparing GPU time with wall time. */
export function formatProfile(s: ProfileSummary, opts: { top?: number; byShader?: ProfileSummary; precise?: boolean } = {}): string {
  const top = opts.top ?? 20;
  const lines: string[] = [];
  const busy = s.wallMs > 0 ? ` = ${(s.busyFraction * 100).toFixed(1)}% of wall` : '';
  lines.push(
    `[profile] ${s.windows} steps: wall ${s.wallMs.toFixed(1)} ms, GPU ${s.gpuMs.toFixed(1)} ms in ${s.dispatches} timed dispatches${busy}` +
      ` (${s.submits} submits${s.lostDispatches ? `, ${s.lostDispatches} dispatches unreadable` : ''}${opts.precise === false ? ', timestamps quantized to 65.5 us' : ''})`,
  );
  const nameW = Math.max(12, ...s.rows.slice(0, top).map((r) => r.name.length));
  lines.push(
    `${'kernel'.padEnd(nameW)}  ${'calls'.padStart(7)}  ${'total ms'.padStart(10)}  ${'mean us'.padStart(9)}  ${'max us'.padStart(9)}  ${'share'.padStart(6)}`,
  );
  for (const r of s.rows.slice(0, top)) {
    lines.push(
      `${r.name.padEnd(nameW)}  ${String(r.calls).padStart(7)}  ${r.totalMs.toFixed(2).padStart(10)}  ${r.meanUs.toFixed(1).padStart(9)}  ${r.maxUs.toFixed(1).padStart(9)}  ${`${(r.share * 100).toFixed(1)}%`.padStart(6)}`,
    );
  }
  if (s.rows.length > top) {
    const rest = s.rows.slice(top);
    const ms = rest.reduce((a, r) => a + r.totalMs, 0);
    const calls = rest.reduce((a, r) => a + r.calls, 0);
    lines.push(
      `${`(${rest.length} more)`.padEnd(nameW)}  ${String(calls).padStart(7)}  ${ms.toFixed(2).padStart(10)}  ${''.padStart(9)}  ${''.padStart(9)}  ${`${((s.gpuMs > 0 ? ms / s.gpuMs : 0) * 100).toFixed(1)}%`.padStart(6)}`,
    );
  }
  if (opts.byShader) lines.push(`by shader file: ${opts.byShader.rows.map((r) => `${r.name} ${(r.share * 100).toFixed(1)}%`).join(', ')}`);
  return lines.join('\n');
}

/** The JSON written next to the metrics: every grouping, untruncated. */
export function profileJson(p: GpuProfiler, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const op = p.summary('op');
  return {
    ...extra,
    steps: op.windows,
    wallMs: op.wallMs,
    gpuMs: op.gpuMs,
    busyFraction: op.busyFraction,
    dispatches: op.dispatches,
    submits: op.submits,
    lostDispatches: op.lostDispatches,
    byOp: op.rows,
    byShader: p.summary('shader').rows,
    byLabel: p.summary('label').rows,
  };
}
