/**
 * What the two matmul kernels (matmul-blocked.ts for the CPU family, matmul-tiled.ts for the GPU
 * family) share: the problem description, the bindings, the expert-tile search of the grouped
 * mode, and the epilogue store. Both fill shaders/include/matmul-common.wgsl's {{ACT}}.
 */
import type { FloatDType } from './tensor.ts';

export type Activation = 'none' | 'relu' | 'silu' | 'gelu-tanh';

/** plain / batched; segk: dW[e] over the rows of expert e; grouped: the rows of x by expert. */
export type Mode = 'plain' | 'segk' | 'grouped';

/**
 * scalar ('f32': the historical name, it means one element per load whatever the storage type);
 * vec4 of 4 consecutive k ('k4'); vec4 of 4 consecutive rows at one k ('r4').
 */
export type LoadMode = 'f32' | 'k4' | 'r4';

/** Everything but the tiling: shared by both kernels' descriptions. */
export interface ProblemDesc {
  mode: Mode;
  transA: boolean;
  transB: boolean;
  /** How A and B are loaded: scalar, vec4 along K ('k4'), or vec4 along their row index ('r4'). */
  loadA: LoadMode;
  loadB: LoadMode;
  bias: boolean;
  residual: boolean;
  activation: Activation;
  accumulate: boolean;
  /** Storage types of A, B, C and the residual (default f32; the bias is always f32). */
  typeA?: FloatDType;
  typeB?: FloatDType;
  typeC?: FloatDType;
  typeR?: FloatDType;
}

export const ACT: Record<Activation, string> = {
  none: 'v',
  relu: 'max(v, 0.0)',
  silu: 'v / (1.0 + exp(-v))',
  // tanh's argument is clamped: some tanh lowerings compute exp(2x)/.. and overflow to NaN,
  // and tanh(±10) already equals ±1 in f32.
  'gelu-tanh': '0.5 * v * (1.0 + tanh(clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -10.0, 10.0)))',
};

/** A load of storage type `t` widened to f32 (identity for f32, so the f32 kernels are unchanged). */
export function widen(t: FloatDType, expr: string, vec = false): string {
  return t === 'f32' ? expr : `${vec ? 'vec4<f32>' : 'f32'}(${expr})`;
}

/** Group-0 declarations in binding order: A, B, C, then the optional bias, residual, offsets. */
export function bindingDecls(d: ProblemDesc): { decls: string[]; enable: string } {
  const tA = d.typeA ?? 'f32';
  const tB = d.typeB ?? 'f32';
  const tC = d.typeC ?? 'f32';
  const tR = d.typeR ?? 'f32';
  let slot = 0;
  // vec4<f16> has 8-byte alignment: the same element-offset % 4 conditions as vec4<f32>.
  const bind = (decl: string) => `@group(0) @binding(${slot++}) ${decl};`;
  const decls = [
    bind(`var<storage, read> A: array<${d.loadA === 'f32' ? tA : `vec4<${tA}>`}>`),
    bind(`var<storage, read> B: array<${d.loadB === 'f32' ? tB : `vec4<${tB}>`}>`),
    bind(`var<storage, read_write> C: array<${tC}>`),
  ];
  if (d.bias) decls.push(bind('var<storage, read> bias: array<f32>'));
  if (d.residual) decls.push(bind(`var<storage, read> R: array<${tR}>`));
  if (d.mode !== 'plain') decls.push(bind('var<storage, read> offsets: array<u32>'));
  const f16 = [tA, tB, tC, ...(d.residual ? [tR] : [])].includes('f16');
  return { decls, enable: f16 ? 'enable f16;' : '' };
}

/**
 * Grouped mode: row tile wid.x walks the experts' tile counts (uniform loads, E is small) to find
 * which expert and which of its row tiles it is; sets e, lStart, lEnd and found.
 */
export function expertTileSearch(rowsPerTile: number): string[] {
  return [
    '  var e = 0u;',
    '  var first = 0u;',
    '  var lStart = 0u;',
    '  var lEnd = 0u;',
    '  var found = false;',
    '  for (var i = 0u; i < u.E; i += 1u) {',
    '    let r0 = offsets[i];',
    '    let r1 = max(offsets[i + 1u], r0);',
    `    let nt = (r1 - r0 + ${rowsPerTile - 1}u) / ${rowsPerTile}u;`,
    '    if (wid.x < first + nt) {',
    `      e = i; lStart = r0 + (wid.x - first) * ${rowsPerTile}u; lEnd = r1; found = true;`,
    '      break;',
    '    }',
    '    first += nt;',
    '  }',
  ];
}

/**
 * Statements storing accumulator `acc` at C[row, col] (in bounds: the caller checks): v =
 * act(alpha·acc + bias[col]) + residual, added to C with accumulate, narrowed to C's type.
 */
export function storeElement(d: ProblemDesc, row: string, col: string, acc: string, indent: string): string[] {
  const tC = d.typeC ?? 'f32';
  const tR = d.typeR ?? 'f32';
  const v = d.bias ? `fma(${acc}, u.alpha, bias[${col}])` : `${acc} * u.alpha`;
  let e = `act(${v})`;
  if (d.residual) e += ` + ${widen(tR, 'R[idx]')}`;
  if (d.accumulate) e += ` + ${widen(tC, 'C[idx]')}`;
  return [`${indent}let idx = cOff + ${row} * u.N + ${col};`, `${indent}C[idx] = ${tC === 'f32' ? e : `${tC}(${e})`};`];
}
