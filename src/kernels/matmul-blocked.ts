/**
 * The CPU-family matmul kernel (shaders/matmul-blocked.wgsl): register-blocked, no workgroup memory.
 *
 * Vocabulary: the "lane" dimension of C is spread over the invocations of a workgroup, the
 * "uniform" dimension is blocked per workgroup. With wgU = 1 the uniform operand's addresses do
 * not depend on the invocation, which on lavapipe turns its loads into scalar loads + broadcasts.
 * Tint does not unroll loops, so the register blocks are unrolled here.
 */
import type { FloatDType } from './tensor.ts';
import type { MatmulConfig } from './matmul-config.ts';
import { ACT, bindingDecls, expertTileSearch, storeElement, widen, type LoadMode, type ProblemDesc } from './matmul-common.ts';

export interface BlockedDesc extends ProblemDesc {
  cfg: MatmulConfig;
}

/** An operand of the product, as index expressions. */
interface Operand {
  name: 'A' | 'B';
  mode: LoadMode;
  /** Storage type (loads are widened to f32). */
  type: FloatDType;
  /** Extent of the row index (for r4 clamping) and the distance between consecutive k in vec4 units. */
  rows: string;
  kStride4: string;
  /** Element index of row `x` at k = 0 (x is m for A, n for B). */
  base(x: string): string;
  /** Distance between consecutive k ('1' when K is the contiguous axis). */
  kStride: string;
}

function operands(d: BlockedDesc): { A: Operand; B: Operand } {
  // A is [M, K] (transA: [K, M]), B is [K, N] (transB: [N, K]): `rows` is the operand's own size.
  const operand = (name: 'A' | 'B', mode: LoadMode, type: FloatDType | undefined, rows: string, kContiguous: boolean, off: string): Operand => ({
    name,
    mode,
    type: type ?? 'f32',
    rows,
    kStride4: `(${rows} >> 2u)`,
    base: (x) => (kContiguous ? `${off} + ${x} * u.K` : `${off} + ${x}`),
    kStride: kContiguous ? '1' : rows,
  });
  return { A: operand('A', d.loadA, d.typeA, 'u.M', !d.transA, 'aOff'), B: operand('B', d.loadB, d.typeB, 'u.N', d.transB, 'bOff') };
}

const SWZ = ['x', 'y', 'z', 'w'];

/** Generate the template values of shaders/matmul-blocked.wgsl for one specialisation. */
export function generateBlocked(d: BlockedDesc): Record<string, string | number> {
  const { cfg } = d;
  const { A, B } = operands(d);
  const D = cfg.lane === 'm' ? A : B; // divergent (per-lane) operand
  const S = cfg.lane === 'm' ? B : A; // operand shared by the lanes of a workgroup row
  const TL = cfg.tl;
  const TU = cfg.tu;
  const RT = cfg.wgL * TL;
  const lenU = cfg.lane === 'm' ? 'u.N' : 'u.M';
  const I = (n: number) => Array.from({ length: n }, (_, i) => i);

  const { decls, enable } = bindingDecls(d);

  // ---- setup: offsets, k range and the lane range of this workgroup
  const s: string[] = [];
  if (d.mode === 'plain') {
    s.push('  let aOff = u.aBase + wid.z * u.aBatch;', '  let bOff = u.bBase + wid.z * u.bBatch;', '  let cOff = u.cBase + wid.z * u.cBatch;');
    s.push('  let kBegin = 0u;', '  let kEnd = u.K;');
    s.push(`  let lStart = wid.x * ${RT}u;`, `  let lEnd = ${cfg.lane === 'm' ? 'u.M' : 'u.N'};`);
  } else if (d.mode === 'segk') {
    // dW[e] = Aᵀ·B over the rows of expert e: the contraction range comes from offsets.
    s.push('  let e = wid.z;', '  let aOff = 0u;', '  let bOff = 0u;', '  let cOff = e * u.cBatch;');
    s.push('  let kBegin = offsets[e];', '  let kEnd = max(offsets[e + 1u], kBegin);');
    s.push(`  let lStart = wid.x * ${RT}u;`, `  let lEnd = ${cfg.lane === 'm' ? 'u.M' : 'u.N'};`);
  } else {
    // Tiles past the last expert exit.
    s.push(
      ...expertTileSearch(RT),
      '  if (!found) { return; }',
      '  let aOff = 0u;',
      '  let bOff = e * u.N * u.K;',
      '  let cOff = 0u;',
      '  let kBegin = 0u;',
      '  let kEnd = u.K;',
    );
  }
  if (cfg.wgU === 1) s.push('  let lidL = lid;', '  let lidU = 0u;');
  else s.push(`  let lidL = lid % ${cfg.wgL}u;`, `  let lidU = lid / ${cfg.wgL}u;`);
  s.push(`  let uStart = wid.y * ${cfg.wgU * TU}u + lidU * ${TU}u;`, '  let lLast = lEnd - 1u;', `  let uLast = ${lenU} - 1u;`);
  // Each invocation owns TL consecutive lane rows and TU consecutive uniform columns.
  const bases = (op: Operand, idx: string, n: number, first: string, last: string, tag: string) => {
    for (const i of I(n)) s.push(`  let ${idx}${i} = ${first} + ${i}u;`);
    if (op.mode === 'r4') {
      // one base per group of 4 rows; the group start is clamped so the vec4 stays in range
      // (rows past the end are loaded but never stored)
      for (let g = 0; g < n / 4; g++) s.push(`  let ${tag}${g} = (${op.base(`min(${idx}${4 * g}, ${op.rows} - 4u)`)}) / 4u;`);
    } else {
      for (const i of I(n)) {
        const b = op.base(`min(${idx}${i}, ${last})`);
        s.push(`  let ${tag}${i} = ${op.mode === 'k4' ? `(${b}) / 4u` : b};`);
      }
    }
  };
  bases(D, 'l', TL, `lStart + lidL * ${TL}u`, 'lLast', 'd');
  bases(S, 'u', TU, 'uStart', 'uLast', 's');

  // ---- accumulators
  const decl = I(TL).flatMap((i) => I(TU).map((j) => `  var c${i}_${j} = 0.0;`));

  // ---- main body: KU k-steps, loads then FMAs
  const kIdx = (kk: number) => (kk === 0 ? 'k' : `(k + ${kk}u)`);
  /** Statements loading what step kk needs, and the expression of element (row r, step kk). */
  const loads = (op: Operand, tag: string, n: number, kk: number, out: string[]): ((r: number) => string) => {
    if (op.mode === 'k4') {
      const q = Math.floor(kk / 4);
      // one 16-byte load per row covers 4 k-steps (k is a multiple of 4 in the main loop)
      if (kk % 4 === 0)
        for (const r of I(n)) out.push(`    let ${tag}v${r}_${q} = ${widen(op.type, `${op.name}[${tag}${r} + (k >> 2u)${q ? ` + ${q}u` : ''}]`, true)};`);
      return (r) => `${tag}v${r}_${q}.${SWZ[kk % 4]}`;
    }
    if (op.mode === 'r4') {
      for (let g = 0; g < n / 4; g++) out.push(`    let ${tag}w${g}_${kk} = ${widen(op.type, `${op.name}[${tag}${g} + ${kIdx(kk)} * ${op.kStride4}]`, true)};`);
      return (r) => `${tag}w${Math.floor(r / 4)}_${kk}.${SWZ[r % 4]}`;
    }
    const k = kIdx(kk);
    for (const r of I(n))
      out.push(
        `    let ${tag}x${r}_${kk} = ${widen(op.type, op.kStride === '1' ? `${op.name}[${tag}${r} + ${k}]` : `${op.name}[${tag}${r} + ${k} * ${op.kStride}]`)};`,
      );
    return (r) => `${tag}x${r}_${kk}`;
  };
  const step = (kk: number, out: string[], first: (i: number, j: number, prod: string) => string) => {
    const dv = loads(D, 'd', TL, kk, out);
    const sv = loads(S, 's', TU, kk, out);
    for (const i of I(TL)) for (const j of I(TU)) out.push(first(i, j, `${dv(i)}, ${sv(j)}`));
  };
  const body: string[] = [];
  for (let kk = 0; kk < cfg.ku; kk++) {
    // Partial sums over the KU steps are fresh values; the loop-carried accumulator is written
    // once per iteration (lavapipe stores loop-carried values through the exec mask).
    step(kk, body, (i, j, ab) => (kk === 0 ? `    var p${i}_${j} = ${ab.replace(', ', ' * ')};` : `    p${i}_${j} = fma(${ab}, p${i}_${j});`));
  }
  for (const i of I(TL)) for (const j of I(TU)) body.push(`    c${i}_${j} += p${i}_${j};`);
  // ---- remainder body: one k-step; k4 operands index a component of their vec4
  const body1: string[] = [];
  const loads1 = (op: Operand, tag: string, n: number): ((r: number) => string) => {
    if (op.mode === 'k4') return (r) => widen(op.type, `${op.name}[${tag}${r} + (k >> 2u)][k & 3u]`);
    if (op.mode === 'r4') {
      for (let g = 0; g < n / 4; g++) body1.push(`    let ${tag}w${g} = ${widen(op.type, `${op.name}[${tag}${g} + k * ${op.kStride4}]`, true)};`);
      return (r) => `${tag}w${Math.floor(r / 4)}.${SWZ[r % 4]}`;
    }
    return (r) => widen(op.type, op.kStride === '1' ? `${op.name}[${tag}${r} + k]` : `${op.name}[${tag}${r} + k * ${op.kStride}]`);
  };
  const dv1 = loads1(D, 'd', TL);
  const sv1 = loads1(S, 's', TU);
  for (const i of I(TL)) body1.push(`    let a${i} = ${dv1(i)};`);
  for (const j of I(TU)) body1.push(`    let b${j} = ${sv1(j)};`);
  for (const i of I(TL)) for (const j of I(TU)) body1.push(`    c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`);

  // ---- epilogue
  const epi: string[] = [];
  for (const j of I(TU)) {
    epi.push(`  if (u${j} < ${lenU}) {`);
    for (const i of I(TL)) {
      const row = cfg.lane === 'm' ? `l${i}` : `u${j}`;
      const col = cfg.lane === 'm' ? `u${j}` : `l${i}`;
      epi.push(`    if (l${i} < lEnd) {`, ...storeElement(d, row, col, `c${i}_${j}`, '      '), '    }');
    }
    epi.push('  }');
  }

  return {
    ENABLE: enable,
    BINDINGS: decls.join('\n'),
    ACT: ACT[d.activation],
    WG: cfg.wgL * cfg.wgU,
    SETUP: s.join('\n'),
    DECL: decl.join('\n'),
    KU: cfg.ku,
    BODY: body.join('\n'),
    BODY1: body1.join('\n'),
    EPILOGUE: epi.join('\n'),
  };
}
