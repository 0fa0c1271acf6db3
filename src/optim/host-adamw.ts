/**
 * AdamW with its state in host memory (optim.offload "host"): f32 master weights and exp_avg /
 * exp_avg_sq live in shared host arrays, updated by worker threads over all cores; the GPU keeps
 * only the working weights (f16 with f16 activations) and their gradients. The update is the GPU
 * AdamW's (kernels/adamw.ts, shaders/adamw.wgsl): clip coefficient and loss-scale unscale in one
 * gradScale, decoupled weight decay for decay groups only, bias correction from the step count.
 *
 * One step (Trainer.resolve, after the GPU decided the step is good): gradients come down group
 * by group (readMany), the workers update each group while the next one is read, and the new
 * working weights go up (rt.write). A skipped step moves nothing.
 *
 * On the meta runtime nothing is allocated: the planner reads hostBytes.
 *
 * The threads are the platform's: the caller passes `workers` (Node's worker_threads,
 * src/optim/node/update-workers.ts); without them the update runs on the calling thread.
 */
import type { Backend, ReadArray, Tensor } from '../kernels/tensor.ts';
import { f32ToF16Bits } from '../kernels/f16.ts';
import type { Parameter } from '../model/parameter.ts';
import type { AdamWOptions } from './adamw.ts';
import type { HostOptimizerBytes, StepOptimizer } from './step-optimizer.ts';

/** The per-step scalars of the update, as the GPU kernel's uniforms hold them. */
export interface UpdateScalars {
  gradScale: number;
  decay: number;
  b2: number;
  eps: number;
  stepSize: number;
  bc2: number;
  omb1: number;
  omb2: number;
}

/**
 * The update of elements [from, to): the same arithmetic as shaders/adamw.wgsl's main, in float64
 * intermediates rounded to f32 on store (the GPU rounds every operation to f32: the two agree to a
 * few f32 ulps per step). Self-contained: the workers run its source text.
 */
export function adamwSpan(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, from: number, to: number, gOff: number, k: UpdateScalars): void {
  for (let i = from; i < to; i++) {
    const gi = g[gOff + i - from]! * k.gradScale;
    const pi = p[i]! * k.decay;
    const mi = m[i]! + k.omb1 * (gi - m[i]!);
    const vi = k.b2 * v[i]! + k.omb2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - (k.stepSize * mi) / (Math.sqrt(vi) / k.bc2 + k.eps);
  }
}

/** The AdamW scalars of update t (1-based), from float64 host math rounded once to f32. */
export function updateScalars(o: AdamWOptions, lr: number, t: number, gradScale: number, decayed: boolean): UpdateScalars {
  const f = Math.fround;
  return {
    gradScale: f(gradScale),
    decay: f(1 - lr * (decayed ? o.weightDecay : 0)),
    b2: f(o.beta2),
    eps: f(o.eps),
    stepSize: f(lr / (1 - o.beta1 ** t)),
    bc2: f(Math.sqrt(1 - o.beta2 ** t)),
    omb1: f(1 - o.beta1),
    omb2: f(1 - o.beta2),
  };
}

interface HostState {
  param: Parameter;
  master: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** f16 bits of the working weights, when the GPU copy is f16. */
  half: Uint16Array | null;
}

interface Job {
  state: number;
  from: number;
  to: number;
  gOff: number;
  k: UpdateScalars;
}

/** What a worker is sent for one group: the group's gradients (shared) and its jobs. */
export interface UpdateMessage {
  id: number;
  grads: SharedArrayBuffer;
  jobs: Job[];
}

/**
 * The worker's program, platform-free: `setup(workerData)` returns the message handler, which
 * updates the spans of its jobs and returns the message id. The update and the f16 conversion go
 * in as their source texts (one code path with this thread's). The platform wraps it in its own
 * message loop (UpdateWorkers.spawn).
 */
const WORKER_BODY = `
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const adamwSpan = ${adamwSpan.toString()};
const f32ToF16Bits = ${f32ToF16Bits.toString()};
function setup(workerData) {
  const states = workerData.states.map((s) => ({ master: new Float32Array(s.master), m: new Float32Array(s.m), v: new Float32Array(s.v), half: s.half ? new Uint16Array(s.half) : null }));
  return (msg) => {
    const grads = new Float32Array(msg.grads);
    for (const j of msg.jobs) {
      const s = states[j.state];
      adamwSpan(s.master, grads, s.m, s.v, j.from, j.to, j.gOff, j.k);
      if (s.half) for (let i = j.from; i < j.to; i++) s.half[i] = f32ToF16Bits(s.master[i]);
    }
    return msg.id;
  };
}
`;

/** The shared state arrays a worker is started with. */
export interface UpdateWorkerData {
  states: { master: ArrayBufferLike; m: ArrayBufferLike; v: ArrayBufferLike; half: ArrayBufferLike | null }[];
}

/** One update thread, as the platform made it. */
export interface UpdateWorker {
  post(msg: UpdateMessage): void;
  /** A job is in flight (true) or not: an idle worker must not keep a Node process alive. */
  busy(inFlight: boolean): void;
  terminate(): void;
}

/** The platform's threads: `spawn` starts one running WORKER_BODY; `done` gets each finished message id, `fail` a dead worker. */
export interface UpdateWorkers {
  spawn(body: string, data: UpdateWorkerData, events: { done(id: number): void; fail(e: Error): void }): UpdateWorker;
  /** Threads when HostAdamWOptions.threads is not given (Node: every core). */
  defaultThreads: number;
}

export interface HostAdamWOptions {
  /** The platform's threads (none: the update runs on the calling thread). */
  workers?: UpdateWorkers;
  /** Worker threads (default: workers.defaultThreads). 0 updates on the calling thread. */
  threads?: number;
  /** Gradient bytes per streamed group (default 64 MiB). */
  groupBytes?: number;
}

export class HostAdamW implements StepOptimizer {
  private readonly states: HostState[] = [];
  private readonly workers: UpdateWorker[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, { done: () => void; fail: (e: Error) => void; worker: UpdateWorker }>();
  /** Optimizer steps applied. */
  step = 0;
  /** The update reads the gradients after the step's readback: they must outlive Trainer.record. */
  readonly updatesAfterReadback = true;
  readonly groupBytes: number;
  /** Host bytes of master weights, moments and the gradient staging of one group. */
  readonly hostBytes: HostOptimizerBytes;

  constructor(
    readonly rt: Backend,
    readonly params: readonly Parameter[],
    readonly opts: AdamWOptions,
    o: HostAdamWOptions = {},
  ) {
    this.groupBytes = o.groupBytes ?? 64 * 2 ** 20;
    const elements = params.reduce((a, p) => a + p.data.size, 0);
    const largest = params.reduce((a, p) => Math.max(a, p.data.size), 0);
    this.hostBytes = { master: 4 * elements, moments: 8 * elements, staging: 4 * Math.max(largest, this.groupBytes / 4) };
    if (rt.caps.meta) return; // planning: counted, not allocated
    for (const p of params) {
      const master = p.takeHostMaster();
      const shared = (n: number, bytes: number) => new SharedArrayBuffer(n * bytes);
      const st: HostState = {
        param: p,
        master: new Float32Array(shared(p.data.size, 4)),
        m: new Float32Array(shared(p.data.size, 4)),
        v: new Float32Array(shared(p.data.size, 4)),
        half: p.data.dtype === 'f16' ? new Uint16Array(shared(p.data.size, 2)) : null,
      };
      st.master.set(master);
      this.states.push(st);
    }
    if (!o.workers && o.threads)
      throw new Error(`host AdamW: ${o.threads} threads asked for, but no workers given (HostAdamWOptions.workers: the platform's threads)`);
    const threads = o.workers ? (o.threads ?? o.workers.defaultThreads) : 0;
    const workerData: UpdateWorkerData = {
      states: this.states.map((s) => ({ master: s.master.buffer, m: s.m.buffer, v: s.v.buffer, half: s.half?.buffer ?? null })),
    };
    for (let i = 0; i < threads; i++) {
      // A worker that dies fails the update it was running (never a silent hang or exit).
      const fail = (e: Error) => {
        for (const [id, job] of this.waiting)
          if (job.worker === w) {
            this.waiting.delete(id);
            job.fail(new Error(`host AdamW worker failed: ${e.message}`));
          }
      };
      const w: UpdateWorker = o.workers!.spawn(WORKER_BODY, workerData, { done: (id) => this.waiting.get(id)?.done(), fail });
      this.workers.push(w);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  /** Host state of a parameter: its f32 master weights and moments (checkpoints read and write them). */
  stateOf(p: Parameter): { master: Float32Array; m: Float32Array; v: Float32Array } {
    const s = this.states.find((x) => x.param === p);
    if (!s) throw new Error(`host AdamW has no state for ${p.name}`);
    return s;
  }

  /** Upload a parameter's working weights from its master copy (after a checkpoint or an import was loaded into it). */
  pushWeight(p: Parameter): void {
    const s = this.states.find((x) => x.param === p);
    if (!s) throw new Error(`host AdamW has no state for ${p.name}`);
    if (s.half) for (let i = 0; i < s.master.length; i++) s.half[i] = f32ToF16Bits(s.master[i]!);
    this.rt.write(p.data, s.half ?? s.master);
  }

  /** StepOptimizer: nothing on the GPU; the update waits for the readback (applyAfterReadback). */
  recordUpdate(): void {}

  /** StepOptimizer: the update, once the readback said the step is good. */
  applyAfterReadback(lr: number, gradScale: number): Promise<void> {
    return this.apply(lr, gradScale);
  }

  /** StepOptimizer: no moments on the GPU (they are host arrays). */
  gpuMoments(): [] {
    return [];
  }

  /**
   * Update t = step + 1 from the parameters' GPU gradients: `gradScale` is the clip coefficient
   * over the loss scale (CLIP.gradScale). Streams gradients group by group; the next group is read
   * while the workers update the current one.
   */
  async apply(lr: number, gradScale: number): Promise<void> {
    const t = this.step + 1;
    const withGrad = this.states.filter((s) => s.param.grad);
    const groups: HostState[][] = [];
    let cur: HostState[] = [];
    let bytes = 0;
    for (const s of withGrad) {
      if (cur.length && bytes + 4 * s.param.data.size > this.groupBytes) {
        groups.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(s);
      bytes += 4 * s.param.data.size;
    }
    if (cur.length) groups.push(cur);
    const read = (g: HostState[]) => this.rt.readMany(g.map((s) => s.param.grad as Tensor));
    let next: Promise<ReadArray[]> | null = groups.length ? read(groups[0]!) : null;
    for (let gi = 0; gi < groups.length; gi++) {
      const group = groups[gi]!;
      const grads = await next!;
      next = gi + 1 < groups.length ? read(groups[gi + 1]!) : null;
      await this.update(group, grads as Float32Array[], lr, t, gradScale);
      for (const s of group) this.rt.write(s.param.data, s.half ?? s.master);
    }
    this.step = t;
  }

  /** Spread the group's elements over the workers (or run on this thread without any). */
  private async update(group: HostState[], grads: Float32Array[], lr: number, t: number, gradScale: number): Promise<void> {
    const total = grads.reduce((a, g) => a + g.length, 0);
    if (this.workers.length === 0) {
      group.forEach((s, i) => {
        adamwSpan(s.master, grads[i]!, s.m, s.v, 0, s.master.length, 0, updateScalars(this.opts, lr, t, gradScale, s.param.decay));
        if (s.half) for (let j = 0; j < s.master.length; j++) s.half[j] = f32ToF16Bits(s.master[j]!);
      });
      return;
    }
    // One shared copy of the group's gradients; each worker takes a contiguous share of it.
    const shared = new Float32Array(new SharedArrayBuffer(4 * Math.max(total, 1)));
    let at = 0;
    const spans: { state: number; start: number; len: number; gBase: number; k: UpdateScalars }[] = [];
    group.forEach((s, i) => {
      shared.set(grads[i]!, at);
      spans.push({ state: this.states.indexOf(s), start: 0, len: grads[i]!.length, gBase: at, k: updateScalars(this.opts, lr, t, gradScale, s.param.decay) });
      at += grads[i]!.length;
    });
    const per = Math.ceil(total / this.workers.length);
    const jobs: Job[][] = this.workers.map(() => []);
    for (const sp of spans) {
      for (let off = 0; off < sp.len;) {
        const w = Math.min(this.workers.length - 1, Math.floor((sp.gBase + off) / per));
        const end = Math.min(sp.len, (w + 1) * per - sp.gBase);
        jobs[w]!.push({ state: sp.state, from: off, to: end, gOff: sp.gBase + off, k: sp.k });
        off = end;
      }
    }
    await Promise.all(
      this.workers.map((w, i) => {
        if (jobs[i]!.length === 0) return Promise.resolve();
        const id = this.nextId++;
        return new Promise<void>((done, fail) => {
          w.busy(true);
          this.waiting.set(id, {
            worker: w,
            done: () => {
              this.waiting.delete(id);
              w.busy(false);
              done();
            },
            fail: (e) => {
              w.busy(false);
              fail(e);
            },
          });
          w.post({ id, grads: shared.buffer as SharedArrayBuffer, jobs: jobs[i]! });
        });
      }),
    );
  }

  dispose(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
