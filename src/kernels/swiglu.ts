/**
 * Fused SwiGLU activation h = silu(g) ⊙ u and its backward (dg and du from one kernel).
 * Kernels: shaders/swiglu.wgsl. f32 or f16 storage (f16 needs the device's shader-f16), f32 math.
 *
 * Two layouts: separate g and u of one shape [..., H] (`swiglu`), or one [..., 2H] tensor with the
 * gate in [..., 0:H] and up in [..., H:2H] (`swigluFused`), as one matmul with concatenated
 * gate/up weights produces; its backward writes one [..., 2H] gradient to feed that matmul's backward.
 */
import type { Kernel } from './kernel-spec.ts';
import { floatDtype, type Tensor } from './tensor.ts';
import { foldedGrid } from './grid.ts';

/** Invocations per workgroup (the shader's WG override). */
const WG = 256;

type Entry = 'forward' | 'backward' | 'forward_fused' | 'backward_fused';

function kernel(t: Tensor, entry: Entry): Kernel {
  const T = floatDtype(t, 'swiglu');
  return t.rt.kernel({ shader: 'swiglu', entry, params: { T, ENABLES: T === 'f16' ? 'enable f16;' : '' }, constants: { WG } });
}

/** Dispatch over n = R*H output elements; H is the row length of the [R, H] side. */
function run(k: Kernel, bindings: Record<string, Tensor>, n: number, H: number): void {
  const rt = Object.values(bindings)[0]!.rt;
  rt.dispatch(k, bindings, foldedGrid(rt, n, WG), { n, h: H });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function check(ts: readonly Tensor[], names: readonly string[], what: string, shape: readonly number[]): void {
  ts.forEach((t, i) => {
    if (t.dtype !== ts[0]!.dtype) throw new Error(`${what}: ${names[i]} ${t} has not the dtype of ${names[0]} ${ts[0]}`);
    if (!sameShape(t.shape, shape)) throw new Error(`${what}: ${names[i]} ${t} must have shape [${shape.join(', ')}]`);
  });
}

function lastDim(t: Tensor, what: string): number {
  const H = t.shape[t.shape.length - 1];
  if (H === undefined) throw new Error(`${what}: ${t} needs at least one dimension`);
  return H;
}

/** h = silu(g) ⊙ u; g and u of one shape and dtype. */
export function swiglu(g: Tensor, u: Tensor): Tensor {
  check([g, u], ['g', 'u'], 'swiglu', g.shape);
  const h = g.rt.empty(g.shape, g.dtype, 'swiglu h');
  run(kernel(g, 'forward'), { f_g: g, f_u: u, f_h: h }, g.size, lastDim(g, 'swiglu'));
  return h;
}

/** dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g), in one kernel. */
export function swigluBackward(g: Tensor, u: Tensor, dh: Tensor): { dg: Tensor; du: Tensor } {
  check([g, u, dh], ['g', 'u', 'dh'], 'swigluBackward', g.shape);
  const dg = g.rt.empty(g.shape, g.dtype, 'swiglu dg');
  const du = g.rt.empty(g.shape, g.dtype, 'swiglu du');
  run(kernel(g, 'backward'), { b_g: g, b_u: u, b_dh: dh, b_dg: dg, b_du: du }, g.size, lastDim(g, 'swigluBackward'));
  return { dg, du };
}

/** Shape [..., H] of the output for a fused input [..., 2H]. */
function halfShape(gu: Tensor, what: string): number[] {
  const twoH = lastDim(gu, what);
  if (twoH % 2 !== 0) throw new Error(`${what}: last dimension of ${gu} must be even (gate | up)`);
  return [...gu.shape.slice(0, -1), twoH / 2];
}

/** h[..., H] = silu(gu[..., 0:H]) ⊙ gu[..., H:2H]. */
export function swigluFused(gu: Tensor): Tensor {
  const shape = halfShape(gu, 'swigluFused');
  const h = gu.rt.empty(shape, gu.dtype, 'swiglu h');
  run(kernel(gu, 'forward_fused'), { ff_gu: gu, ff_h: h }, h.size, shape[shape.length - 1]!);
  return h;
}

/** The [..., 2H] gradient of swigluFused: dgate in [..., 0:H], dup in [..., H:2H]. */
export function swigluFusedBackward(gu: Tensor, dh: Tensor): Tensor {
  const shape = halfShape(gu, 'swigluFusedBackward');
  check([dh], ['dh'], 'swigluFusedBackward', shape);
  if (dh.dtype !== gu.dtype) throw new Error(`swigluFusedBackward: dh ${dh} has not the dtype of gu ${gu}`);
  const dgu = gu.rt.empty(gu.shape, gu.dtype, 'swiglu dgu');
  run(kernel(gu, 'backward_fused'), { bf_gu: gu, bf_dh: dh, bf_dgu: dgu }, dh.size, shape[shape.length - 1]!);
  return dgu;
}
