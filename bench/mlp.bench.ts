/**
 * The peer workload every engine here can run: one training step of a 256 -> 1024 (ReLU) -> 256
 * MLP, batch 256, MSE loss, plain SGD (lr 0.01), measured in the same run in
 *   (a) our engine: autograd Graph, linearRelu (bias + ReLU fused into the matmul epilogue),
 *       linear, mseLoss, SGD as an in-place axpy per parameter; one submit per step and the
 *       queue awaited per step (what a training loop that reads its loss does);
 *   (b) tfjs-backend-webgpu on the same Dawn/lavapipe adapter (optimizer.minimize + tf.train.sgd);
 *   (c) PyTorch CPU eager (bench/peers/torch_mlp.py, Debian's /usr/bin/python3), 1 and 2 threads.
 * Plus a cheap breakdown of ours: forward only, forward + backward, full step, and the full step
 * with many steps per submit (what the per-step wait costs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DawnRuntime } from '../src/kernels/runtime.ts';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import type { Tensor } from '../src/kernels/tensor.ts';
import { Graph } from '../src/autograd/graph.ts';
import { Var, release } from '../src/autograd/variable.ts';
import { linear } from '../src/autograd/ops/linear.ts';
import { linearRelu, mseLoss } from './mlp-ops.ts';
import { axpy } from '../src/kernels/elementwise.ts';
import { Rng } from '../src/util/rng.ts';
import {
  combineOutcomes,
  compareOutput,
  round,
  spread,
  timeGpu,
  type BenchRow,
  type CheckOutcome,
  type SuiteContext,
  type SuiteResult,
  type Timing,
} from './harness.ts';
import { matmulRef } from '../test/reference/matmul-ref.ts';
import { loadTfjs } from './peers/tfjs.ts';
import { tfMlp, type MlpShape, type TfMlp } from './peers/tfjs-mlp.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Debian's python3 has torch 1.13 + OpenBLAS; the pyenv python3 first on PATH has no torch. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface TorchPeerResult {
  ok: boolean;
  /** Parsed JSON line the script printed (when ok). */
  data: Record<string, unknown>;
  /** Why it did not run (when not ok). */
  note: string;
}

/** Run a bench/peers/*.py script with Debian's python3 and parse the JSON it prints last. */
export function runTorchPeer(script: string, args: string[], timeoutMs = 600_000): TorchPeerResult {
  if (!existsSync(SYSTEM_PYTHON)) return { ok: false, data: {}, note: `${SYSTEM_PYTHON} not found` };
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { ok: false, data: {}, note: `${SYSTEM_PYTHON} has no torch: ${probe.stderr.trim().split('\n').pop()}` };
  const r = spawnSync(SYSTEM_PYTHON, [join(ROOT, 'bench', 'peers', script), ...args], { encoding: 'utf8', timeout: timeoutMs, cwd: ROOT });
  if (r.status !== 0)
    return { ok: false, data: {}, note: `${script} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim().split('\n').slice(-3).join(' / ')}` };
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return { ok: true, data: JSON.parse(line) as Record<string, unknown>, note: '' };
  } catch {
    return { ok: false, data: {}, note: `${script}: unparsable output ${line.slice(0, 200)}` };
  }
}

export const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

const SHAPE: MlpShape = { batch: 256, din: 256, hidden: 1024, lr: 0.01 };

interface OurMlp {
  params: Var[];
  /** The batch and its targets. */
  x: Tensor;
  y: Tensor;
  /**
   * Record forward (+ backward, + SGD) of one step, no waiting; the caller disposes the graph.
   * 'grads': forward + backward, the gradients left on the parameters for the caller to read.
   */
  record(mode: 'forward' | 'backward' | 'step' | 'grads'): Graph;
  /** The loss Var of a recorded graph (kept through backward). */
  lossOf(g: Graph): Var | null;
  dispose(): void;
}

function uniformTensor(rt: DawnRuntime, rng: Rng, shape: number[], lim: number, label: string): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return rt.upload(Float32Array.from(rng.uniformArray(n, -lim, lim)), shape, 'f32', label);
}

/** nn.Linear-style init (uniform ±1/sqrt(fan_in)), W stored [out, in] (our linear's layout). */
function buildOurs(rt: DawnRuntime, s: MlpShape): OurMlp {
  const rng = new Rng(1);
  const l1 = 1 / Math.sqrt(s.din);
  const l2 = 1 / Math.sqrt(s.hidden);
  const params = [
    new Var(uniformTensor(rt, rng, [s.hidden, s.din], l1, 'w1'), true, 'w1'),
    new Var(uniformTensor(rt, rng, [s.hidden], l1, 'b1'), true, 'b1'),
    new Var(uniformTensor(rt, rng, [s.din, s.hidden], l2, 'w2'), true, 'w2'),
    new Var(uniformTensor(rt, rng, [s.din], l2, 'b2'), true, 'b2'),
  ];
  const x = rt.upload(Float32Array.from(rng.normalArray(s.batch * s.din)), [s.batch, s.din], 'f32', 'x');
  const y = rt.upload(Float32Array.from(rng.normalArray(s.batch * s.din)), [s.batch, s.din], 'f32', 'y');
  const xVar = new Var(x, false, 'x');
  const losses = new WeakMap<Graph, Var>();
  return {
    params,
    x,
    y,
    lossOf: (g) => losses.get(g) ?? null,
    record(mode) {
      const [w1, b1, w2, b2] = params as [Var, Var, Var, Var];
      const g = new Graph(mode !== 'forward');
      const loss = g.run(() => mseLoss(linear(linearRelu(xVar, w1, b1), w2, b2), y));
      g.keep(loss);
      losses.set(g, loss);
      if (mode === 'forward') return g;
      // The seed is filled on the GPU (a dispatch), not uploaded: a host write would split the
      // step into two submits.
      const seed = rt.empty([1], 'f32', 'seed');
      rt.fill(seed, 1);
      g.backward(loss, seed);
      if (mode === 'grads') return g;
      if (mode === 'step') for (const p of params) axpy(p.grad!, p.data, -s.lr, 1);
      // Release the gradients (not zero-fill): the next backward assigns fresh pooled buffers,
      // which saves a fill and an accumulate dispatch per parameter.
      for (const p of params) {
        if (p.grad) release(p.grad);
        p.grad = null;
      }
      return g;
    },
    dispose() {
      for (const p of params) p.dispose();
      xVar.dispose();
      y.dispose();
    },
  };
}

/** Our step with one submit and a queue wait per step: ms per step over `steps` steps. */
async function sampleOurs(rt: DawnRuntime, m: OurMlp, steps: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const g = m.record('step');
    await rt.sync();
    g.dispose();
  }
  return (performance.now() - t0) / steps;
}

async function lossAfterStep(rt: DawnRuntime, m: OurMlp): Promise<number> {
  const g = m.record('step');
  const v = (await rt.read(m.lossOf(g)!.data))[0]!;
  g.dispose();
  return v;
}

/**
 * Our step against float64 before anything is timed: the loss, the four gradients (f32 sums
 * over 256 or 1024 terms: 1e-5 of each tensor's largest entry) and the SGD update itself
 * (p - lr g, to 1e-6 of the largest |p|).
 */
async function checkOurs(m: OurMlp, s: MlpShape): Promise<CheckOutcome> {
  const { batch: B, din: D, hidden: H } = s;
  const [X, Y] = [await m.x.readF32(), await m.y.readF32()];
  const [W1, b1, W2, b2] = await Promise.all(m.params.map((p) => p.data.readF32()));
  const z1 = matmulRef(X, W1!, B, H, D, false, true);
  for (let i = 0; i < B * H; i++) z1[i]! += b1![i % H]!;
  const h1 = z1.map((v) => Math.max(v, 0));
  const yp = matmulRef(h1, W2!, B, D, H, false, true);
  let loss = 0;
  const dy = new Float64Array(B * D);
  for (let i = 0; i < B * D; i++) {
    const r = yp[i]! + b2![i % D]! - Y[i]!;
    loss += (r * r) / (B * D);
    dy[i] = (2 * r) / (B * D);
  }
  const dW2 = matmulRef(dy, h1, D, H, B, true, false);
  const db2 = new Float64Array(D);
  for (let i = 0; i < B * D; i++) db2[i % D]! += dy[i]!;
  const dz1 = matmulRef(dy, W2!, B, H, D, false, false).map((v, i) => (z1[i]! > 0 ? v : 0));
  const dW1 = matmulRef(dz1, X, H, D, B, true, false);
  const db1 = new Float64Array(H);
  for (let i = 0; i < B * H; i++) db1[i % H]! += dz1[i]!;
  const refGrads = [dW1, db1, dW2, db2];

  const g = m.record('grads');
  const gotLoss = (await m.lossOf(g)!.data.readF32())[0]!;
  const grads = await Promise.all(m.params.map((p) => p.grad!.readF32()));
  for (const p of m.params) {
    release(p.grad!);
    p.grad = null;
  }
  g.dispose();
  const before = [W1!, b1!, W2!, b2!];
  m.record('step').dispose();
  const after = await Promise.all(m.params.map((p) => p.data.readF32()));
  return combineOutcomes(
    compareOutput([gotLoss], [loss], 1e-5),
    ...grads.map((gr, i) => compareOutput(gr, refGrads[i]!, 1e-5)),
    ...after.map((a, i) =>
      compareOutput(
        a,
        Float64Array.from(before[i]!, (v, j) => v - s.lr * refGrads[i]![j]!),
        1e-6,
      ),
    ),
  );
}

/** Breakdown of ours, many iterations per submit (no per-step wait): fwd, fwd + bwd, step. */
async function breakdown(rt: DawnRuntime, m: OurMlp, samples: number): Promise<BenchRow[]> {
  const submits0 = rt.recorder.submits;
  const dispatches0 = rt.recorder.dispatches;
  await sampleOurs(rt, m, 1);
  const submitsPerStep = rt.recorder.submits - submits0;
  const dispatchesPerStep = rt.recorder.dispatches - dispatches0;
  const opts = { samples, sampleMs: 600, maxIters: 20 };
  const fwd = await timeGpu(rt, () => m.record('forward').dispose(), opts);
  const bwd = await timeGpu(rt, () => m.record('backward').dispose(), opts);
  const piped = await timeGpu(rt, () => m.record('step').dispose(), opts);
  const flops = mlpFlops(SHAPE);
  const row = (what: string, t: Timing, f: number): BenchRow => ({
    part: what,
    'ms (best)': round(t.bestMs, 2),
    'ms (median)': round(t.medianMs, 2),
    'min–max ms': spread(t, 2),
    'matmul GFLOP/s (median)': round(f / (t.medianMs * 1e6), 2),
  });
  return [
    row('forward only (2 matmuls + MSE)', fwd, flops.forward),
    row('forward + backward (5 matmuls + relu/bias/MSE backward)', bwd, flops.step),
    { ...row('full step (+ 4 SGD axpys)', piped, flops.step), 'submits/step (synced loop)': submitsPerStep, 'dispatches/step': dispatchesPerStep },
  ];
}

/** Matmul FLOPs: forward 2 products; backward dW1, dW2, dH (dX is not needed: x is data). */
function mlpFlops(s: MlpShape): { forward: number; step: number } {
  const one = 2 * s.batch * s.din * s.hidden;
  return { forward: 2 * one, step: 5 * one };
}

interface Samples {
  engine: string;
  device: string;
  ms: number[];
}

function stats(ms: readonly number[]): { best: number; median: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const h = s.length >> 1;
  return { best: s[0]!, median: s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2, max: s[s.length - 1]! };
}

export async function run(ctx: SuiteContext): Promise<SuiteResult[]> {
  const rt = await getRuntime({ announce: false });
  const rounds = ctx.quick ? 2 : 4;
  const notes: string[] = [];

  // Build every engine first (compiles shaders, one untimed step each), then interleave them in
  // rounds: other agents load this 2-core machine unevenly, so engines timed minutes apart can
  // see very different machines. Interleaving gives each the same chances at a quiet moment.
  const ours = buildOurs(rt, SHAPE);
  // The check runs before anything is timed; a wrong step is not benchmarked at all.
  const check = await checkOurs(ours, SHAPE);
  ctx.log(`our step against float64: ${check.text}`);
  if (!check.ok) {
    ours.dispose();
    return [
      {
        title: 'MLP training step: 256→1024(ReLU)→256, batch 256, MSE, SGD lr 0.01',
        rows: [{ engine: 'webgpu-moe (this engine)', check: check.text }],
        notes: ['Our step failed its float64 check: not timed.'],
      },
    ];
  }
  const loss0 = await lossAfterStep(rt, ours);
  const oursS: Samples = { engine: 'webgpu-moe (this engine)', device: 'lavapipe', ms: [] };
  const tfS: Samples = { engine: 'tfjs-backend-webgpu 4.22 (matMul/add/relu, optimizer.minimize)', device: 'lavapipe (same adapter)', ms: [] };
  const tfFusedS: Samples = { engine: 'tfjs-backend-webgpu 4.22 (tf.fused.matMul bias+relu)', device: 'lavapipe (same adapter)', ms: [] };
  const torchS: Samples[] = [1, 2].map((t) => ({ engine: `PyTorch CPU eager, ${t} thread${t > 1 ? 's' : ''}`, device: 'CPU', ms: [] }));
  let tf: { plain: TfMlp; fused: TfMlp } | null = null;
  try {
    const lib = await loadTfjs();
    tf = { plain: await tfMlp(lib, SHAPE), fused: await tfMlp(lib, SHAPE, { fused: true }) };
  } catch (e) {
    notes.push(`tfjs peer unavailable: ${(e as Error).message}`);
  }
  const torchOk = [true, true];
  for (let r = 0; r < rounds; r++) {
    oursS.ms.push(await sampleOurs(rt, ours, 3), await sampleOurs(rt, ours, 3));
    if (tf) {
      tfS.ms.push(await tf.plain.sample(2));
      tfFusedS.ms.push(await tf.fused.sample(2));
    }
    for (const [i, threads] of [1, 2].entries()) {
      if (!torchOk[i]) continue;
      const p = runTorchPeer('torch_mlp.py', ['--threads', String(threads), '--samples', '3', '--sample-ms', '200']);
      if (!p.ok) {
        torchOk[i] = false;
        notes.push(`PyTorch ${threads} thread(s) skipped: ${p.note}`);
        continue;
      }
      torchS[i]!.engine = `PyTorch ${String(p.data.torch)} CPU eager, ${threads} thread${threads > 1 ? 's' : ''}`;
      torchS[i]!.device = blasLabel(p.data.blas_gflops, p.data.blas_note);
      torchS[i]!.ms.push(...(p.data.ms_samples as number[]));
    }
    const last = (s: Samples) => (s.ms.length ? s.ms[s.ms.length - 1]!.toFixed(1) : '-');
    ctx.log(
      `round ${r + 1}/${rounds}: ours ${last(oursS)} ms, tfjs ${last(tfS)}, tfjs fused ${last(tfFusedS)}, torch-1t ${last(torchS[0]!)}, torch-2t ${last(torchS[1]!)}`,
    );
  }
  const lossLast = await lossAfterStep(rt, ours);
  const parts = await breakdown(rt, ours, ctx.quick ? 2 : 4);
  ours.dispose();
  if (tf) {
    notes.push(`tfjs loss ${tf.plain.loss0.toFixed(4)} -> ${tf.plain.lossLast.toFixed(4)} over its timed steps.`);
    tf.plain.dispose();
    tf.fused.dispose();
  }

  const all = [oursS, tfS, tfFusedS, ...torchS].filter((s) => s.ms.length > 0);
  const oursBest = stats(oursS.ms).best;
  const oursMedian = stats(oursS.ms).median;
  const rows: BenchRow[] = all.map((s) => {
    const { best, median, max } = stats(s.ms);
    return {
      engine: s.engine,
      device: s.device,
      check: s === oursS ? check.text : 'loss only (notes)',
      'ms/step (best)': round(best, 2),
      'ms/step (median)': round(median, 2),
      'min–max ms': `${round(best, 2)}–${round(max, 2)}`,
      samples: s.ms.length,
      'ours ÷ this (median; <1 = ours faster)': round(oursMedian / median, 3),
    };
  });
  const med = (s: Samples) => (s.ms.length ? stats(s.ms).median : null);
  const tfM = med(tfS);
  const r1 = med(torchS[0]!);
  const r2 = med(torchS[1]!);
  const summary = [
    `Medians: ours/tfjs time ratio ${tfM ? round(oursMedian / tfM, 3) : 'n/a'} (ours ×${tfM ? round(tfM / oursMedian, 2) : 'n/a'} faster; goal ≥ ×5); ours/PyTorch: ${r1 ? round(oursMedian / r1, 2) : 'n/a'} (1 thread), ${r2 ? round(oursMedian / r2, 2) : 'n/a'} (2 threads) — ours is that many times slower. Best-of ratio for comparison: ours/tfjs ${tfS.ms.length ? round(oursBest / stats(tfS.ms).best, 3) : 'n/a'}.`,
    `Loss of ours: ${loss0.toFixed(4)} at the first step -> ${lossLast.toFixed(4)} after the timed steps (SGD really updates the weights).`,
    `${rounds} interleaved rounds; every engine syncs once per step (ours: one submit + onSubmittedWorkDone; tfjs: await loss.data(); PyTorch: synchronous). Best and median over all samples; the CPU is shared with other agents, so medians are noisy.`,
    'The docs/DESIGN.md §4 reference on this machine type: tfjs-webgpu 287 ms/step, PyTorch 6-8 ms (1 thread), 20-26 ms (2 threads, oversubscribed).',
    ...notes,
  ];
  return [
    { title: 'MLP training step: 256→1024(ReLU)→256, batch 256, MSE, SGD lr 0.01', rows, notes: summary },
    {
      title: 'where our step time goes (many iterations per submit, one wait)',
      rows: parts,
      notes: [
        `Matmul work per step: ${(mlpFlops(SHAPE).step / 1e6).toFixed(0)} MFLOP (forward ${(mlpFlops(SHAPE).forward / 1e6).toFixed(0)}); up to 20 iterations are recorded into one submit, then one wait.`,
      ],
    },
  ];
}

/**
 * The PyTorch peer's device label from its measured 512³ matmul rate: the reference BLAS (a few
 * GFLOP/s) would make PyTorch look 20-40x slower than it is, so say which one ran.
 */
/** The peer's device with the BLAS rate it measured and what the harness did about OpenBLAS's core type. */
export function blasLabel(gflops: unknown, note?: unknown): string {
  const g = num(gflops);
  if (g === null) return 'CPU';
  const n = typeof note === 'string' && note ? `; ${note}` : '';
  return `CPU (BLAS ${g.toFixed(0)} GFLOP/s at 512³${g < 20 ? '; reference BLAS? install libopenblas0-pthread' : ''}${n})`;
}
