/**
 * The GPU-family matmul kernel (shaders/matmul-tiled.wgsl): each workgroup computes a BM x BN tile
 * of C = epilogue(op(A)·op(B)), stepping through K in BK-deep tiles that the workgroup loads into
 * workgroup memory together (zero-filled past the edges), then each invocation accumulates RM x RN
 * outputs in registers. Invocation (ty, tx) owns rows ty + i·TY and columns tx + j·TX: neighbouring
 * invocations read neighbouring workgroup-memory words (no bank conflicts) and store neighbouring
 * elements of C (coalesced). A tile whose K axis is contiguous in memory is stored with one padding
 * word per row, so the cooperative stores do not hit one bank either. With `prefetch` the next
 * K tile is loaded into registers while the current one is multiplied (double buffering through
 * registers). The same modes as the CPU kernel: plain / batched, segk (dW over an expert's rows)
 * and grouped (rows by expert). Tint does not unroll loops: the generator does.
 */
import { ACT, bindingDecls, expertTileSearch, storeElement, widen, type ProblemDesc } from './matmul-common.ts';
import type { TiledConfig } from './policy.ts';

export type { TiledConfig } from './policy.ts';

export interface TiledDesc extends ProblemDesc {
  cfg: TiledConfig;
}

export function tileRows(c: TiledConfig): number {
  return c.ty * c.rm;
}

export function tileCols(c: TiledConfig): number {
  return c.tx * c.rn;
}

/** Workgroup memory words of the A and B tiles (with the padding of a K-contiguous operand). */
export function tileWords(c: TiledConfig, transA: boolean, transB: boolean): { sa: number; sb: number; words: number } {
  const sa = tileRows(c) + (transA ? 0 : 1);
  const sb = tileCols(c) + (transB ? 1 : 0);
  return { sa, sb, words: c.bk * (sa + sb) };
}

/** Why a configuration cannot run (null when it can). */
export function tiledProblem(c: TiledConfig, maxInvocations: number, maxWorkgroupBytes: number): string | null {
  for (const k of ['tx', 'ty', 'rm', 'rn', 'bk'] as const) if (!Number.isInteger(c[k]) || c[k] < 1) return `${k}=${c[k]} must be a positive integer`;
  const wg = c.tx * c.ty;
  if (wg > maxInvocations) return `workgroup ${c.tx}x${c.ty} exceeds ${maxInvocations} invocations`;
  if ((tileRows(c) * c.bk) % wg !== 0 || (tileCols(c) * c.bk) % wg !== 0)
    return `tile ${tileRows(c)}x${tileCols(c)}x${c.bk} does not split evenly over ${wg} invocations`;
  if (c.rm * c.rn > 64) return `register block ${c.rm}x${c.rn} too large`;
  const bytes = Math.max(tileWords(c, false, true).words, tileWords(c, true, false).words) * 4;
  if (bytes > maxWorkgroupBytes) return `tiles need ${bytes} B of workgroup memory, over ${maxWorkgroupBytes}`;
  return null;
}

export function generateTiled(d: TiledDesc): Record<string, string | number> {
  const c = d.cfg;
  const TX = c.tx;
  const TY = c.ty;
  const WG = TX * TY;
  const BM = tileRows(c);
  const BN = tileCols(c);
  const BK = c.bk;
  const { sa: SA, sb: SB } = tileWords(c, d.transA, d.transB);
  const I = (n: number) => Array.from({ length: n }, (_, i) => i);
  const { decls, enable } = bindingDecls(d);

  // ---- setup: operand offsets, the K range and this workgroup's rows and columns
  const s: string[] = [];
  if (d.mode === 'plain') {
    s.push('  let aOff = u.aBase + wid.z * u.aBatch;', '  let bOff = u.bBase + wid.z * u.bBatch;', '  let cOff = u.cBase + wid.z * u.cBatch;');
    s.push('  let kBegin = 0u;', '  let kEnd = u.K;', `  let rowStart = wid.x * ${BM}u;`, '  let rowEnd = u.M;');
  } else if (d.mode === 'segk') {
    // dW[e] = Aᵀ·B over the rows of expert e: the contraction range comes from offsets.
    s.push('  let e = wid.z;', '  let aOff = 0u;', '  let bOff = 0u;', '  let cOff = e * u.cBatch;');
    s.push('  let kBegin = offsets[e];', '  let kEnd = max(offsets[e + 1u], kBegin);', `  let rowStart = wid.x * ${BM}u;`, '  let rowEnd = u.M;');
  } else {
    // The search depends on wid.x and uniform loads only, so a whole workgroup leaves together.
    s.push(...expertTileSearch(BM), '  if (!found) { return; }', '  let aOff = 0u;', '  let bOff = e * u.N * u.K;', '  let cOff = 0u;');
    s.push('  let kBegin = 0u;', '  let kEnd = u.K;', '  let rowStart = lStart;', '  let rowEnd = lEnd;');
  }
  s.push(
    `  let colStart = wid.y * ${BN}u;`,
    `  let tx = lid % ${TX}u;`,
    `  let ty = lid / ${TX}u;`,
    '  let rowLast = rowEnd - 1u;',
    '  let colLast = u.N - 1u;',
  );

  // ---- cooperative loads of one K tile starting at `k`: element t of this invocation
  const tA = d.typeA ?? 'f32';
  const tB = d.typeB ?? 'f32';
  const LA = (BM * BK) / WG;
  const LB = (BN * BK) / WG;
  /** Statements computing register `reg` = the operand value this invocation moves for slot t. */
  const fetch = (op: 'A' | 'B', t: number, k: string): string[] => {
    const i = `(lid + ${t * WG}u)`;
    if (op === 'A') {
      // A's K axis is contiguous unless transposed: walk k fastest for coalesced loads.
      const [mm, kk] = d.transA ? [`${i} % ${BM}u`, `${i} / ${BM}u`] : [`${i} / ${BK}u`, `${i} % ${BK}u`];
      const row = `min(rowStart + ${mm}, rowLast)`;
      const kc = `min(${k} + ${kk}, kEnd - 1u)`;
      const addr = d.transA ? `aOff + ${kc} * u.M + ${row}` : `aOff + ${row} * u.K + ${kc}`;
      return [`    let ra${t} = select(0.0, ${widen(tA, `A[${addr}]`)}, rowStart + ${mm} < rowEnd && ${k} + ${kk} < kEnd);`];
    }
    const [nn, kk] = d.transB ? [`${i} / ${BK}u`, `${i} % ${BK}u`] : [`${i} % ${BN}u`, `${i} / ${BN}u`];
    const col = `min(colStart + ${nn}, colLast)`;
    const kc = `min(${k} + ${kk}, kEnd - 1u)`;
    const addr = d.transB ? `bOff + ${col} * u.K + ${kc}` : `bOff + ${kc} * u.N + ${col}`;
    return [`    let rb${t} = select(0.0, ${widen(tB, `B[${addr}]`)}, colStart + ${nn} < u.N && ${k} + ${kk} < kEnd);`];
  };
  const store = (op: 'A' | 'B', t: number, value: string): string => {
    const i = `(lid + ${t * WG}u)`;
    if (op === 'A') {
      const [mm, kk] = d.transA ? [`${i} % ${BM}u`, `${i} / ${BM}u`] : [`${i} / ${BK}u`, `${i} % ${BK}u`];
      return `    As[${kk} * ${SA}u + ${mm}] = ${value};`;
    }
    const [nn, kk] = d.transB ? [`${i} / ${BK}u`, `${i} % ${BK}u`] : [`${i} % ${BN}u`, `${i} / ${BN}u`];
    return `    Bs[${kk} * ${SB}u + ${nn}] = ${value};`;
  };
  const fetchAll = (k: string) => [...I(LA).flatMap((t) => fetch('A', t, k)), ...I(LB).flatMap((t) => fetch('B', t, k))];
  const storeAll = (src: (op: 'A' | 'B', t: number) => string) => [
    ...I(LA).map((t) => store('A', t, src('A', t))),
    ...I(LB).map((t) => store('B', t, src('B', t))),
  ];

  const pre: string[] = [];
  const body: string[] = [];
  if (c.prefetch) {
    // Registers carry the next tile across iterations: fetch tile k0 before the loop, then in each
    // iteration store it, and fetch the following one while multiplying.
    for (const t of I(LA)) pre.push(`  var pa${t} = 0.0;`);
    for (const t of I(LB)) pre.push(`  var pb${t} = 0.0;`);
    pre.push(
      '  if (kBegin < kEnd) {',
      ...fetchAll('kBegin').map((l) => `  ${l}`),
      ...I(LA).map((t) => `    pa${t} = ra${t};`),
      ...I(LB).map((t) => `    pb${t} = rb${t};`),
      '  }',
    );
    body.push(...storeAll((op, t) => `p${op === 'A' ? 'a' : 'b'}${t}`), '    workgroupBarrier();');
    body.push(
      `    let kn = k0 + ${BK}u;`,
      '    if (kn < kEnd) {',
      ...fetchAll('kn').map((l) => `  ${l}`),
      ...I(LA).map((t) => `      pa${t} = ra${t};`),
      ...I(LB).map((t) => `      pb${t} = rb${t};`),
      '    }',
    );
  } else {
    body.push(...fetchAll('k0'), ...storeAll((op, t) => `r${op === 'A' ? 'a' : 'b'}${t}`), '    workgroupBarrier();');
  }
  // ---- multiply the tile in workgroup memory: RM x RN FMAs per k
  const step = (kk: string, tag: string) => {
    for (const i of I(c.rm)) body.push(`    let a${i}${tag} = As[ty + ${kk} * ${SA}u + ${i * TY}u];`);
    for (const j of I(c.rn)) body.push(`    let b${j}${tag} = Bs[tx + ${kk} * ${SB}u + ${j * TX}u];`);
    for (const i of I(c.rm)) for (const j of I(c.rn)) body.push(`    c${i}_${j} = fma(a${i}${tag}, b${j}${tag}, c${i}_${j});`);
  };
  if (c.unrollK) for (let kk = 0; kk < BK; kk++) step(`${kk}u`, `_${kk}`);
  else {
    body.push(`    for (var kk = 0u; kk < ${BK}u; kk += 1u) {`);
    step('kk', '');
    body.push('    }');
  }
  body.push('    workgroupBarrier();');

  const decl = I(c.rm).flatMap((i) => I(c.rn).map((j) => `  var c${i}_${j} = 0.0;`));
  const epi: string[] = [];
  for (const i of I(c.rm)) {
    epi.push(`  let row${i} = rowStart + ty + ${i * TY}u;`);
    for (const j of I(c.rn)) {
      epi.push(
        `  if (row${i} < rowEnd && colStart + tx + ${j * TX}u < u.N) {`,
        ...storeElement(d, `row${i}`, `(colStart + tx + ${j * TX}u)`, `c${i}_${j}`, '    '),
        '  }',
      );
    }
  }
  return {
    ENABLE: enable,
    BINDINGS: decls.join('\n'),
    ACT: ACT[d.activation],
    WG,
    A_WORDS: BK * SA,
    B_WORDS: BK * SB,
    SETUP: s.join('\n'),
    DECL: [...decl, ...pre].join('\n'),
    BK,
    BODY: body.join('\n'),
    EPILOGUE: epi.join('\n'),
  };
}
