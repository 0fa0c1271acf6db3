/**
 * Elementwise ops: unary maps, broadcasting binary ops, in-place axpy, backward helpers,
 * copy and f32<->f16 casts. All go through the one template shader shaders/elementwise.wgsl;
 * each op is a WGSL body for `fn op(x: f32, i: u32) -> f32` (see the shader header).
 */
import { floatDtype, floatStorage, type Tensor, type Backend } from './tensor.ts';
import { sumAxis } from './reduce.ts';
import { grid1d } from './grid.ts';

/** Re-exported for callers that imported it from here first. */

/** Ops of one operand; `alpha` / `beta` are the uniform scalars (scale, addScalar). */
export const UNARY_OPS = {
  neg: 'return -x;',
  exp: 'return exp(x);',
  log: 'return log(x);',
  sqrt: 'return sqrt(x);',
  rsqrt: 'return inverseSqrt(x);',
  sigmoid: 'return sigmoid(x);',
  silu: 'return x * sigmoid(x);',
  relu: 'return max(x, 0.0);',
  // Not the builtin: lavapipe's tanh loses relative accuracy near 0 (2.5e-5 at x = -0.0016, measured).
  // Taylor series below |x| = 0.1 (truncation ~1e-11), exp form above (cancellation <= ~3 bits).
  tanh: 'let a = abs(x); if (a < 0.1) { let x2 = x * x; return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0)))); } let e = exp(-2.0 * a); return sign(x) * (1.0 - e) / (1.0 + e);',
  square: 'return x * x;',
  scale: 'return u.alpha * x;',
  addScalar: 'return x + u.alpha;',
  identity: 'return x;',
} as const;
export type UnaryOp = keyof typeof UNARY_OPS;

/** Ops of two operands, x = a[i] and y = b broadcast to a's shape. */
export const BINARY_OPS = {
  add: 'return x + load_b(i);',
  sub: 'return x - load_b(i);',
  mul: 'return x * load_b(i);',
  div: 'return x / load_b(i);',
  // Backward helpers: a is the forward input (or output), b is dy (same shape).
  siluBackward: 'let s = sigmoid(x); return load_b(i) * s * (1.0 + x * (1.0 - s));',
  sigmoidBackwardFromY: 'return load_b(i) * x * (1.0 - x);',
  tanhBackwardFromY: 'return load_b(i) * (1.0 - x * x);',
  reluBackward: 'return select(0.0, load_b(i), x > 0.0);',
} as const;
export type BinaryOp = keyof typeof BINARY_OPS;

const checkFloat = floatDtype;

interface MapSpec {
  op: string;
  out: Tensor;
  a: Tensor;
  b?: Tensor;
  /** Broadcast view: b index = floor(i / mn) * n + i % n. */
  mn?: number;
  n?: number;
  alpha?: number;
  beta?: number;
}

/** The b index expression for the broadcast view, without divisions where they are trivial. */
function bIndexExpr(s: MapSpec): string {
  const mn = s.mn ?? 1;
  const n = s.n ?? 1;
  if (!s.b || s.b.size === s.out.size) return 'i';
  if (s.b.size === 1) return '0u';
  if (mn === n) return 'i'; // m = 1
  if (s.b.size === n) return 'i % u.n'; // o = 1: [N, d] op [d]
  if (n === 1) return 'i / u.mn'; // [N, d] op [N, 1]
  return '(i / u.mn) * u.n + i % u.n';
}

function runMap(rt: Backend, s: MapSpec): void {
  const types = [s.out.dtype, s.a.dtype, s.b?.dtype ?? 'f32'];
  const kernel = rt.kernel({
    shader: 'elementwise',
    params: {
      ENABLE: types.includes('f16') ? 'enable f16;' : '',
      TO: s.out.dtype,
      TA: s.a.dtype,
      TB: s.b?.dtype ?? 'f32',
      OP: s.op,
      BIDX: bIndexExpr(s),
    },
  });
  const bindings: Record<string, Tensor> = s.b ? { out: s.out, a: s.a, b: s.b } : { out: s.out, a: s.a };
  rt.dispatch(kernel, bindings, grid1d(rt, Math.ceil(s.out.size / 256)), {
    count: s.out.size,
    mn: Math.max(1, s.mn ?? 1),
    n: Math.max(1, s.n ?? 1),
    alpha: s.alpha ?? 0,
    beta: s.beta ?? 0,
  });
}

/** y = op(x). `alpha` is the scalar of `scale` (alpha*x) and `addScalar` (x+alpha). */
export function unary(op: UnaryOp, x: Tensor, alpha = 0): Tensor {
  checkFloat(x, op);
  const out = x.rt.empty(x.shape, x.dtype, op);
  runMap(x.rt, { op: UNARY_OPS[op], out, a: x, alpha });
  return out;
}

export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const silu = (x: Tensor) => unary('silu', x);
export const relu = (x: Tensor) => unary('relu', x);
export const scale = (x: Tensor, alpha: number) => unary('scale', x, alpha);

/** How b broadcasts to a: a viewed as [o, m, n], b as [o, n]. */
export interface BroadcastView {
  o: number;
  m: number;
  n: number;
}

/**
 * Right-align b's shape to a's; every b dim must equal a's or be 1. The broadcast (size-1)
 * dims must form one contiguous run, e.g. [N,d]+[d], [N,d]+[N,1], [B,T,d]+[B,1,d], scalars.
 */
export function broadcastView(aShape: readonly number[], bShape: readonly number[]): BroadcastView {
  const fail = () => new Error(`cannot broadcast [${bShape.join(', ')}] to [${aShape.join(', ')}] (b may only broadcast along one contiguous run of dims)`);
  if (bShape.length > aShape.length) throw fail();
  const pad = aShape.length - bShape.length;
  // Phase 0: leading matched dims, 1: broadcast run, 2: trailing matched dims.
  let phase = 0;
  let o = 1;
  let m = 1;
  let n = 1;
  for (let k = 0; k < aShape.length; k++) {
    const ad = aShape[k]!;
    const bd = k < pad ? 1 : bShape[k - pad]!;
    if (ad === 1 && bd === 1) continue; // size-1 dims fit any phase
    if (bd === ad) {
      if (phase === 1) phase = 2;
      if (phase === 0) o *= ad;
      else n *= ad;
    } else if (bd === 1) {
      if (phase === 2) throw fail();
      phase = 1;
      m *= ad;
    } else throw fail();
  }
  // All-matched shapes land entirely in o: treat them as [1, 1, size] (b index = i).
  if (phase === 0) return { o: 1, m: 1, n: o };
  return { o, m, n };
}

/** out = a op b, b broadcast to a's shape (see broadcastView). */
export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  checkFloat(a, op);
  checkFloat(b, op);
  const v = broadcastView(a.shape, b.shape);
  const out = a.rt.empty(a.shape, a.dtype, op);
  runMap(a.rt, { op: BINARY_OPS[op], out, a, b, mn: v.m * v.n, n: v.n });
  return out;
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);

function sameShape(a: Tensor, b: Tensor, what: string): void {
  if (a.size !== b.size || a.shape.length !== b.shape.length || a.shape.some((d, k) => d !== b.shape[k])) {
    throw new Error(`${what}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}

/** An activation's backward: binary `op` of (x or y, dy), which must have the same shape; errors name `what`. */
function activationBackward(op: BinaryOp, what: string) {
  return (xy: Tensor, dy: Tensor): Tensor => {
    sameShape(xy, dy, what);
    return binary(op, xy, dy);
  };
}

/** dx of y = silu(x), from x and dy: dy * s * (1 + x (1 - s)), s = sigmoid(x). */
export const siluBackward = activationBackward('siluBackward', 'siluBackward');
/** dx of y = sigmoid(x), from the forward output y and dy: dy * y (1 - y). */
export const sigmoidBackward = activationBackward('sigmoidBackwardFromY', 'sigmoidBackward');
/** dx of y = tanh(x), from the forward output y and dy: dy (1 - y^2). */
export const tanhBackward = activationBackward('tanhBackwardFromY', 'tanhBackward');
/** dx of y = relu(x), from x and dy: dy where x > 0, else 0. */
export const reluBackward = activationBackward('reluBackward', 'reluBackward');

/**
 * Sum dy (shape of a) over the dims along which b was broadcast, giving b's shape:
 * the backward of a broadcast add for the b operand.
 */
export function sumToShape(dy: Tensor, bShape: readonly number[]): Tensor {
  const v = broadcastView(dy.shape, bShape);
  return sumAxis(dy, { outer: v.o, n: v.m, inner: v.n }, { outShape: bShape });
}

/** Gradients of out = a + b (b broadcast). da is dy itself (no copy): do not dispose it twice. */
export function addBackward(dy: Tensor, bShape: readonly number[]): { da: Tensor; db: Tensor } {
  return { da: dy, db: sumToShape(dy, bShape) };
}

/** Gradients of out = a * b (b broadcast): da = dy * b, db = sum over broadcast dims of dy * a. */
export function mulBackward(a: Tensor, b: Tensor, dy: Tensor): { da: Tensor; db: Tensor } {
  sameShape(a, dy, 'mulBackward');
  const v = broadcastView(a.shape, b.shape);
  const da = binary('mul', dy, b);
  // The product dy*a is formed inside the reduction: no [a-shaped] temporary.
  const db = sumAxis(dy, { outer: v.o, n: v.m, inner: v.n }, { outShape: b.shape, times: a });
  return { da, db };
}

/**
 * y = alpha * x + beta * y, in place on y (gradient accumulation). With beta = 0, y is not
 * read (BLAS convention), so an uninitialised y is fine.
 */
export function axpy(x: Tensor, y: Tensor, alpha = 1, beta = 1): void {
  sameShape(x, y, 'axpy');
  checkFloat(x, 'axpy');
  checkFloat(y, 'axpy');
  const op = beta === 0 ? 'return u.alpha * x;' : 'return u.alpha * x + u.beta * load_out(i);';
  runMap(y.rt, { op, out: y, a: x, alpha, beta });
}

/** A new tensor with x's contents (a buffer copy, any dtype). */
export function copy(x: Tensor, label = 'copy'): Tensor {
  const out = x.rt.empty(x.shape, x.dtype, label);
  x.rt.copy(x, out, { bytes: x.byteLength });
  return out;
}

/**
 * Convert between f32 and f16 (round to nearest even, as tested on lavapipe). WGSL leaves
 * f32 values outside the f16 range implementation-defined (lavapipe gives +-Inf).
 */
export function cast(x: Tensor, dtype: 'f32' | 'f16'): Tensor {
  checkFloat(x, 'cast');
  floatStorage(x.rt, dtype, 'cast: the target dtype');
  if (x.dtype === dtype) return copy(x, 'cast');
  const out = x.rt.empty(x.shape, dtype, 'cast');
  runMap(x.rt, { op: UNARY_OPS.identity, out, a: x });
  return out;
}
