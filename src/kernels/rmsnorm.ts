/**
 * RMSNorm over the last dim (HF LLaMA / Time-MoE convention): y = w * (x / sqrt(mean(x²) + eps)).
 * Forward saves the per-row rstd for the backward. dw is reduced in two deterministic stages
 * (per-chunk column partials, then a column sum): no float atomics.
 *
 * Storage: x (and so y and dx) f32 or f16; dy f32 or f16 independently of x; w, rstd and dw always
 * f32. f16 needs the device's shader-f16. All math is f32 (shaders/rmsnorm.wgsl).
 */
import { floatDtype, type Tensor, type DType, type Backend } from './tensor.ts';
import type { Kernel } from './kernel-spec.ts';
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

/** The rmsnorm shader specialised for storage types tx (x, y, dx) and tdy (dy). */
function rmsKernel(rt: Backend, entry: string, tx: DType, tdy: DType): Kernel {
  const f16 = tx === 'f16' || tdy === 'f16';
  return rt.kernel({ shader: 'rmsnorm', entry, params: { WG, TX: tx, TDY: tdy, ENABLES: f16 ? 'enable f16;' : '' } });
}

/**
 * Row kernels, as the policy's rmsnorm.rows says: one invocation per row with no barriers (the CPU
 * family's), or one workgroup per row with a tree reduction (the GPU family's). Measured on
 * lavapipe, [1024, 64]: ~4 ms per call for the tree (a barrier per step per row), well under 1 ms serial.
 */
function rowLaunch(rt: Backend, entry: 'forward' | 'backward_dx', N: number, tx: DType, tdy: DType): { kernel: Kernel; grid: [number, number] } {
  const serial = rt.policy.rmsnorm.rows === 'serial';
  return {
    kernel: rmsKernel(rt, serial ? `${entry}_serial` : entry, tx, tdy),
    grid: serial ? foldedGrid(rt, N, WG) : grid1d(rt, N),
  };
}

function params(N: number, d: number, eps: number, chunk = 0, chunks = 0) {
  return { N, d, eps, chunk, chunks };
}

/** A storage dtype accepted for x or dy: f32, or f16 when the device has shader-f16. */
function checkFloat(t: Tensor, name: string, what: string): void {
  floatDtype(t, `${what}: ${name}`);
}

function checkW(x: Tensor, w: Tensor, d: number, what: string): void {
  if (w.size !== d) throw new Error(`${what}: weight ${w} has ${w.size} elements, expected d=${d} (from ${x})`);
  checkFloat(x, 'x', what);
  if (w.dtype !== 'f32') throw new Error(`${what}: weight ${w} must be f32`);
}

/**
 * x [..., d] (f32 or f16), w [d] (f32) -> y (shape and dtype of x), rstd [N] (f32) with
 * N = x.size / d.
 */
export function rmsnorm(x: Tensor, w: Tensor, eps = 1e-6): { y: Tensor; rstd: Tensor } {
  const rt = x.rt;
  const { N, d } = rowsOf(x, 'rmsnorm');
  checkW(x, w, d, 'rmsnorm');
  const y = rt.empty(x.shape, x.dtype, 'rmsnorm.y');
  const rstd = rt.empty([N], 'f32', 'rmsnorm.rstd');
  // dy is not bound by the forward: its slot gets f32, so one pipeline serves each x dtype.
  const { kernel, grid } = rowLaunch(rt, 'forward', N, x.dtype, 'f32');
  rt.dispatch(kernel, { x, w, y, rstd }, grid, params(N, d, eps));
  return { y, rstd };
}

/**
 * Gradients of rmsnorm given dy (size of x; f32 or f16, independently of x) and the forward's
 * saved rstd [N] (f32): dx in x's dtype, dw [d] f32.
 */
export function rmsnormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor): { dx: Tensor; dw: Tensor } {
  const rt = x.rt;
  const { N, d } = rowsOf(x, 'rmsnormBackward');
  checkW(x, w, d, 'rmsnormBackward');
  checkFloat(dy, 'dy', 'rmsnormBackward');
  if (dy.size !== x.size) throw new Error(`rmsnormBackward: dy ${dy} does not match x ${x}`);
  if (rstd.size !== N) throw new Error(`rmsnormBackward: rstd ${rstd} should have ${N} elements`);
  if (rstd.dtype !== 'f32') throw new Error(`rmsnormBackward: rstd ${rstd} must be f32`);

  const dx = rt.empty(x.shape, x.dtype, 'rmsnorm.dx');
  const bdx = rowLaunch(rt, 'backward_dx', N, x.dtype, dy.dtype);
  rt.dispatch(bdx.kernel, { b_dy: dy, b_x: x, b_w: w, b_rstd: rstd, b_dx: dx }, bdx.grid, params(N, d, 0));

  const chunk = Math.max(MIN_CHUNK, Math.ceil(N / MAX_CHUNKS));
  const chunks = Math.max(1, Math.ceil(N / chunk));
  const u = params(N, d, 0, chunk, chunks);
  const part = rt.empty([chunks, d], 'f32', 'rmsnorm.dw_partial');
  const kp = rmsKernel(rt, 'dw_partial', x.dtype, dy.dtype);
  rt.dispatch(kp, { p_dy: dy, p_x: x, p_rstd: rstd, p_part: part }, [Math.ceil(d / WG), chunks], u);
  const dw = rt.empty(w.shape, 'f32', 'rmsnorm.dw');
  const kr = rmsKernel(rt, 'dw_reduce', 'f32', 'f32'); // reads only the f32 partials
  rt.dispatch(kr, { q_part: part, q_dw: dw }, [Math.ceil(d / WG)], u);
  part.dispose(); // safe: queue order keeps it alive for the recorded work
  return { dx, dw };
}
