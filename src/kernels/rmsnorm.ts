/**
 * RMSNorm over the last dim (HF LLaMA / Time-MoE convention): y = w * (x / sqrt(mean(x²) + eps)).
 * Forward saves the per-row rstd for the backward. dw is reduced in two deterministic stages
 * (per-chunk column partials, then a column sum): no float atomics.
 */
import type { Tensor } from './tensor.ts';
import type { Runtime } from './runtime.ts';
import type { Kernel } from './pipeline-cache.ts';
import { foldedGrid, grid1d } from './grid.ts';

const WG = 64;
/** Rows summed by one dw_partial invocation; fewer, longer chunks once N gets large. */
const MIN_CHUNK = 32;
const MAX_CHUNKS = 256;

function rowsOf(x: Tensor, what: string): { N: number; d: number } {
  const d = x.shape[x.shape.length - 1];
  if (d === undefined || d === 0) throw new Error(`${what}: ${x} has no last dimension`);
  return { N: x.size / d, d };
}

/** A 1-D count of workgroups folded into 2-D (at most 65535 per dimension). */
/**
 * Row kernels: on a CPU adapter (lavapipe) one invocation per row, with no barriers; on a GPU one
 * workgroup per row with a tree reduction. Measured on lavapipe, [1024, 64]: ~4 ms per call for
 * the tree (a barrier per step per row), well under 1 ms serial.
 */
function rowLaunch(rt: Runtime, entry: 'forward' | 'backward_dx', N: number): { kernel: Kernel; grid: [number, number] } {
  const serial = rt.gpu.adapter.backend.includes('CPU');
  return {
    kernel: rt.kernel({ shader: 'rmsnorm', entry: serial ? `${entry}_serial` : entry, params: { WG } }),
    grid: serial ? foldedGrid(N, WG) : grid1d(N),
  };
}

function params(N: number, d: number, eps: number, chunk = 0, chunks = 0): ArrayBuffer {
  const buf = new ArrayBuffer(32);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  u[0] = N;
  u[1] = d;
  f[2] = eps;
  u[3] = chunk;
  u[4] = chunks;
  return buf;
}

function checkW(x: Tensor, w: Tensor, d: number, what: string): void {
  if (w.size !== d) throw new Error(`${what}: weight ${w} has ${w.size} elements, expected d=${d} (from ${x})`);
  if (x.dtype !== 'f32' || w.dtype !== 'f32') throw new Error(`${what}: f32 only (got ${x.dtype}, ${w.dtype})`);
}

/** x [..., d], w [d] -> y (same shape as x), rstd [N] with N = x.size / d. */
export function rmsnorm(x: Tensor, w: Tensor, eps = 1e-6): { y: Tensor; rstd: Tensor } {
  const rt = x.rt;
  const { N, d } = rowsOf(x, 'rmsnorm');
  checkW(x, w, d, 'rmsnorm');
  const y = rt.empty(x.shape, 'f32', 'rmsnorm.y');
  const rstd = rt.empty([N], 'f32', 'rmsnorm.rstd');
  const { kernel, grid } = rowLaunch(rt, 'forward', N);
  rt.dispatch(kernel, [x, w, y, rstd], grid, new Uint32Array(params(N, d, eps)));
  return { y, rstd };
}

/** Gradients of rmsnorm given dy (shape of x) and the forward's saved rstd [N]. */
export function rmsnormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor): { dx: Tensor; dw: Tensor } {
  const rt = x.rt;
  const { N, d } = rowsOf(x, 'rmsnormBackward');
  checkW(x, w, d, 'rmsnormBackward');
  if (dy.size !== x.size) throw new Error(`rmsnormBackward: dy ${dy} does not match x ${x}`);
  if (rstd.size !== N) throw new Error(`rmsnormBackward: rstd ${rstd} should have ${N} elements`);

  const dx = rt.empty(x.shape, 'f32', 'rmsnorm.dx');
  const bdx = rowLaunch(rt, 'backward_dx', N);
  rt.dispatch(bdx.kernel, [dy, x, w, rstd, dx], bdx.grid, new Uint32Array(params(N, d, 0)));

  const chunk = Math.max(MIN_CHUNK, Math.ceil(N / MAX_CHUNKS));
  const chunks = Math.max(1, Math.ceil(N / chunk));
  const u = new Uint32Array(params(N, d, 0, chunk, chunks));
  const part = rt.empty([chunks, d], 'f32', 'rmsnorm.dw_partial');
  const kp = rt.kernel({ shader: 'rmsnorm', entry: 'dw_partial', params: { WG } });
  rt.dispatch(kp, [dy, x, rstd, part], [Math.ceil(d / WG), chunks], u);
  const dw = rt.empty(w.shape, 'f32', 'rmsnorm.dw');
  const kr = rt.kernel({ shader: 'rmsnorm', entry: 'dw_reduce', params: { WG } });
  rt.dispatch(kr, [part, dw], [Math.ceil(d / WG)], u);
  part.dispose(); // safe: queue order keeps it alive for the recorded work
  return { dx, dw };
}
