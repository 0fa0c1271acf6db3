/**
 * Rotary position embedding, HF "rotate_half" convention (LLaMA / Time-MoE), positions 0..T-1
 * within each sequence. Input [B, T, H, hd] contiguous, i.e. a Linear's [B*T, H*hd] output.
 *
 * Angles follow HF exactly: inv_freq = 1 / theta^(2i/hd) in float32, freqs = float32(t * inv_freq),
 * then cos/sin. The cos/sin table is built on the host in float64 from those float32 angles (HF
 * takes cos/sin of the same float32 angles), so the GPU's sin/cos accuracy on large arguments
 * never enters. The table is cached per runtime, head dim and theta; `ropeTable` may be called at
 * model build time so that no upload (which flushes recorded work) happens mid-step.
 *
 * Storage: x and y f32 or f16 (f16 needs the device's shader-f16); the table and all math are f32.
 */
import { floatDtype, type Tensor, type Backend } from './tensor.ts';
import { foldedGrid } from './grid.ts';

export interface RopeDims {
  B: number;
  T: number;
  H: number;
  hd: number;
  /** Base of the frequencies, default 10000. */
  theta?: number;
}

const WG = 256;

/** HF's float32 angle of position `pos`, frequency index i (0 <= i < hd/2). */
export function ropeAngleF32(pos: number, i: number, hd: number, theta: number): number {
  const f = Math.fround;
  const invFreq = f(1 / f(Math.pow(theta, f((2 * i) / hd))));
  return f(pos * invFreq);
}

interface CachedTable {
  rows: number;
  table: Tensor;
}
/** The runtime's cached tables by head dim and theta (rt.memo: per runtime, never module state). */
function tablesOf(rt: Backend): Map<string, CachedTable> {
  return rt.memo('rope', 'tables', () => new Map<string, CachedTable>());
}

/**
 * The cached [rows >= T, hd/2] table of (cos, sin) pairs; grown (to a power of two, at least 64
 * rows) when T exceeds it, which disposes the smaller one. The cache owns the tensor: callers
 * must not dispose it nor keep it past a later call with a larger T.
 */
export function ropeTable(rt: Backend, T: number, hd: number, theta = 10000): Tensor {
  const perRt = tablesOf(rt);
  const key = `${hd}|${theta}`;
  const hit = perRt.get(key);
  if (hit && hit.rows >= T) return hit.table;
  const rows = Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(T, 1))));
  const half = hd / 2;
  const build = () => {
    const data = new Float32Array(rows * half * 2);
    for (let t = 0; t < rows; t++)
      for (let i = 0; i < half; i++) {
        const a = ropeAngleF32(t, i, hd, theta);
        data[(t * half + i) * 2] = Math.cos(a);
        data[(t * half + i) * 2 + 1] = Math.sin(a);
      }
    return data;
  };
  const table = rt.upload(build, [rows, half, 2], 'f32', `rope.table[hd=${hd},theta=${theta}]`);
  hit?.table.dispose(); // recorded work that used it was flushed by the upload above
  perRt.set(key, { rows, table });
  return table;
}

/**
 * Free the runtime's cached tables (a model's dispose does this, so the next model starts from the
 * same memory as in a fresh process; a table still needed is rebuilt on demand).
 */
export function releaseRopeTables(rt: Backend): void {
  const perRt = tablesOf(rt);
  for (const c of perRt.values()) c.table.dispose();
  perRt.clear();
}

function check(x: Tensor, d: RopeDims, what: string): void {
  const { B, T, H, hd } = d;
  if (!(hd > 0 && hd % 2 === 0)) throw new Error(`${what}: head dim ${hd} must be even and positive`);
  if (x.size !== B * T * H * hd) throw new Error(`${what}: ${x} does not hold B*T*H*hd = ${B}*${T}*${H}*${hd} elements`);
  floatDtype(x, what);
}

function rotate(x: Tensor, d: RopeDims, sign: 1 | -1, label: string): Tensor {
  const rt = x.rt;
  const theta = d.theta ?? 10000;
  const table = ropeTable(rt, d.T, d.hd, theta);
  const y = rt.empty(x.shape, x.dtype, label);
  const pairs = x.size / 2;
  const params = { WG, T: x.dtype, ENABLES: x.dtype === 'f16' ? 'enable f16;' : '' };
  rt.dispatch(rt.kernel({ shader: 'rope', params }), { x, cs: table, y }, foldedGrid(rt, pairs, WG), { pairs, T: d.T, H: d.H, half: d.hd / 2, sign });
  return y;
}

/** y = RoPE(x): x [B, T, H*hd] (any shape with B*T*H*hd elements; f32 or f16); y has x's shape and dtype. */
export function rope(x: Tensor, d: RopeDims): Tensor {
  check(x, d, 'rope');
  return rotate(x, d, 1, 'rope.y');
}

/** dx = RoPE⁻¹(dy): the rotation is orthogonal, so the backward rotates by -angle. dx has dy's dtype (f32 or f16). */
export function ropeBackward(dy: Tensor, d: RopeDims): Tensor {
  check(dy, d, 'ropeBackward');
  return rotate(dy, d, -1, 'rope.dx');
}
