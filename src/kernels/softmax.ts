/**
 * Softmax and log-softmax over the last axis (f32, numerically stable), with backward
 * passes that take the forward output y, so x need not be kept.
 */
import type { Tensor } from './tensor.ts';
import { grid1d } from './grid.ts';
import type { DeviceCaps } from './caps.ts';

/** [rows, cols] of a tensor whose last axis is reduced. */
function rowsCols(t: Tensor): [number, number] {
  const cols = t.shape.length ? t.shape[t.shape.length - 1]! : 1;
  return [cols === 0 ? 0 : t.size / cols, cols];
}

/**
 * Lanes per row: the device choice of this family (docs/DESIGN.md §9). A power of two <= 256 (the
 * workgroup) with about `perLane` columns each; rows up to `serial` columns get one thread, no
 * workgroup reduction and no barriers. The CPU family keeps router logits (<= 64 columns) on one
 * thread and gives longer rows ~32 columns a lane (barriers are slow on lavapipe); the GPU family
 * spreads anything over 16 columns at ~8 a lane, for parallelism and coalesced loads.
 */
export function lanesPerRow(caps: DeviceCaps, cols: number): number {
  const [serial, perLane] = caps.family === 'cpu' ? [64, 32] : [16, 8];
  if (cols <= serial) return 1;
  let l = 1;
  while (l * perLane < cols && l < 256) l *= 2;
  return l;
}

function run(entry: 'forward' | 'backward', log: boolean, out: Tensor, inputs: [Tensor] | [Tensor, Tensor]): void {
  const rt = out.rt;
  for (const t of inputs) if (t.dtype !== 'f32') throw new Error(`softmax ${entry}: ${t} must be f32`);
  const [rows, cols] = rowsCols(out);
  const lpr = lanesPerRow(rt.caps, cols);
  const kernel = rt.kernel({ shader: 'softmax', entry, constants: { LPR: lpr, LOG: log ? 1 : 0 } });
  // a: x (forward) or y (backward); b: dy (backward).
  rt.dispatch(kernel, { out, a: inputs[0], ...(inputs[1] ? { b: inputs[1] } : {}) }, grid1d(Math.ceil(rows / (256 / lpr))), { rows, cols });
}

function sameShape(a: Tensor, b: Tensor, what: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, k) => d !== b.shape[k])) {
    throw new Error(`${what}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}

/** softmax over the last axis. A row of all -Inf gives NaN (0/0), as in PyTorch. */
export function softmax(x: Tensor): Tensor {
  const y = x.rt.empty(x.shape, 'f32', 'softmax');
  run('forward', false, y, [x]);
  return y;
}

/** log-softmax over the last axis: x - max - log(sum(exp(x - max))). */
export function logSoftmax(x: Tensor): Tensor {
  const y = x.rt.empty(x.shape, 'f32', 'logSoftmax');
  run('forward', true, y, [x]);
  return y;
}

/** dx of y = softmax(x): y * (dy - sum(dy * y)) per row. */
export function softmaxBackward(y: Tensor, dy: Tensor): Tensor {
  sameShape(y, dy, 'softmaxBackward');
  const dx = y.rt.empty(y.shape, 'f32', 'softmax dx');
  run('backward', false, dx, [y, dy]);
  return dx;
}

/** dx of y = logSoftmax(x): dy - exp(y) * sum(dy) per row. */
export function logSoftmaxBackward(y: Tensor, dy: Tensor): Tensor {
  sameShape(y, dy, 'logSoftmaxBackward');
  const dx = y.rt.empty(y.shape, 'f32', 'logSoftmax dx');
  run('backward', true, dx, [y, dy]);
  return dx;
}
