/**
 * Fused causal multi-head attention: o = softmax(q kᵀ / sqrt(hd) + causal mask) v per (b, h),
 * with q, k, v, o laid out [B, T, H*hd] (Linear outputs; q and k after RoPE). The forward saves
 * the row logsumexp lse [B, H, T]; the backward recomputes P = exp(s - lse) in two kernels
 * (dq per query row, dk/dv per key row), so no T×T matrix is stored and no float atomics are used.
 * Two kernels with the same bindings and outputs (see launch): one invocation per row with no
 * barriers (shaders/attention-rows.wgsl, the CPU family) and the same loops over rows staged in
 * workgroup-memory tiles (shaders/attention-tiled.wgsl, the GPU family). Both sum over keys
 * (queries) in two levels, partial sums over blocks of 32 added to totals, and compute every score
 * as (q·k)·scale in the same order in all three entry points (docs/KERNELS.md, "Accuracy of long
 * sums").
 *
 * Storage: q, k, v, o, dq, dk, dv f32 or f16 (one dtype), dO f32 or f16, lse f32; f16 needs the
 * device's shader-f16. Registers and all math are f32.
 *
 * Each head vector is held as NV = hd/W vectors (W = 4 when hd % 4 == 0, else 2); the code that
 * touches them is generated here: unrolled over named registers for hd <= 64 (Tint does not unroll
 * loops), loops over private arrays above (see attentionTemplate).
 */
import type { TemplateParams } from './shader-loader.ts';
import type { KernelPolicy } from './policy.ts';
import { floatDtype, type Backend, type FloatDType, type Tensor } from './tensor.ts';

export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  hd: number;
}

export const MAX_HEAD_DIM = 128;
/** Largest head dim compiled as straight-line register code by default (see attentionTemplate; the policy's attention.unrollMaxHd). */
export const UNROLL_MAX_HD = 64;
/** Rows per workgroup: a multiple of lavapipe's 8 SIMD lanes and a GPU warp (8..64 measured within 10% on lavapipe). */
const WG = 32;
/**
 * Rows per partial sum of the rows kernel, whose sums over keys (queries) are two-level: blocks of
 * BLK terms added to a total, as the tiled kernel's are per tile (docs/KERNELS.md, "Accuracy of long
 * sums"). 8..64 measured alike; 32 is about sqrt(T) at T = 1024.
 */
const BLK = 32;

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Balanced sum of terms, so the adds form a tree (short dependency chains) rather than a line. */
function treeSum(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = Math.ceil(terms.length / 2);
  return `(${treeSum(terms.slice(0, mid))} + ${treeSum(terms.slice(mid))})`;
}

const lines = (n: number, f: (c: number) => string): string =>
  range(n)
    .map((c) => `  ${f(c)}`)
    .join('\n');
const lines2 = (n: number, f: (c: number) => string): string =>
  range(n)
    .map((c) => `    ${f(c)}`)
    .join('\n');

/** Code fragments shared by both forms: the f32 compute vector type, and loads and stores. */
interface Gen {
  /** Compute vector type, vecW<f32>. */
  VT: string;
  zero: string;
  /** Load from q, k, v or o (storage dtype) as VT. */
  ld: (e: string) => string;
  /** Load from dO (its own storage dtype) as VT. */
  ldo: (e: string) => string;
  /** Store a VT into q's storage dtype (o, dq, dk, dv). */
  st: (e: string) => string;
  /**
   * Inner-loop read of vector `c` (an index expression) of the row at `off` of buffer `buf`, as VT:
   * from the storage buffer, or from the workgroup tiles ta/tb in the tiled kernel.
   */
  rd: (buf: InnerBuf, off: string, c: string) => string;
}

/** The buffers the inner loops read: keys/values (forward, backward_q), queries/dO (backward_kv). */
type InnerBuf = 'fk' | 'fv' | 'gk' | 'gv' | 'hq' | 'hdo';
/** Where the tiled kernel stages each (shaders/attention-tiled.wgsl). */
const TILE_OF: Record<InnerBuf, 'ta' | 'tb'> = { fk: 'ta', fv: 'tb', gk: 'ta', gv: 'tb', hq: 'ta', hdo: 'tb' };

/** Rows per workgroup and rows per staged tile of the tiled kernel. */
export interface AttentionBlocks {
  rows: number;
  tile: number;
}

/**
 * Template values for head dim hd: storage vector types and the code blocks of all three entry
 * points. `unroll` (default: hd <= UNROLL_MAX_HD) keeps each head vector in named registers with
 * straight-line code; otherwise the blocks are loops over private arrays. Fully unrolled code
 * for hd = 128 needs ~512 live floats per lane and takes lavapipe's LLVM minutes to compile,
 * so large heads use the compact loop form.
 *
 * `dtype` is the storage of q, k, v, o, dq, dk, dv and `doDtype` that of dO. Registers are
 * vecW<f32>: an f16 load is widened with vecW<f32>(...) and a store narrowed with vecW<f16>(...).
 * With f32 storage no conversion is emitted, so the f32 code is unchanged.
 *
 * With `blocks`, the values of shaders/attention-tiled.wgsl instead: the same blocks with the
 * inner-loop reads taken from the f32 workgroup tiles, and the block sizes.
 */
export function attentionTemplate(
  hd: number,
  unroll = hd <= UNROLL_MAX_HD,
  dtype: FloatDType = 'f32',
  doDtype: FloatDType = 'f32',
  blocks?: AttentionBlocks,
): TemplateParams {
  if (!Number.isInteger(hd) || hd < 2 || hd % 2 !== 0 || hd > MAX_HEAD_DIM) throw new Error(`attention: head dim ${hd} must be even, 2..${MAX_HEAD_DIM}`);
  const W = hd % 4 === 0 ? 4 : 2;
  const NV = hd / W;
  const vec = (t: FloatDType): string => `vec${W}<${t}>`;
  const VT = vec('f32');
  // Element offsets of every vector are multiples of W, so vecW<f16> (8 or 4 bytes) stays aligned.
  const conv =
    (t: FloatDType, to: string) =>
    (e: string): string =>
      t === 'f32' ? e : `${to}(${e})`;
  const ld = conv(dtype, VT);
  const ldo = conv(doDtype, VT);
  const rd = blocks
    ? (buf: InnerBuf, off: string, c: string): string => `${TILE_OF[buf]}[${off} + ${c}]`
    : (buf: InnerBuf, off: string, c: string): string => (buf === 'hdo' ? ldo : ld)(`${buf}[${off} + ${c}]`);
  const gen: Gen = { VT, zero: `${VT}(0.0)`, ld, ldo, st: conv(dtype, vec(dtype)), rd };
  const enables = dtype === 'f16' || doDtype === 'f16' ? 'enable f16;' : '';
  const code = unroll ? unrolledBlocks(NV, gen) : loopedBlocks(gen);
  const sizes: TemplateParams = blocks ? { ROWS: blocks.rows, TILE: blocks.tile, VF: VT } : { WG, BLK };
  return { ...sizes, NV, VT: vec(dtype), VDO: vec(doDtype), ENABLES: enables, ...code };
}

function unrolledBlocks(NV: number, { VT, zero, ld, ldo, st, rd }: Gen): Record<string, string> {
  const at = (buf: string, off: string, c: number): string => `${buf}[${off} + ${c}u]`;
  const sum = (f: (c: number) => string): string => treeSum(range(NV).map(f));
  return {
    // s = (q·k) * scale in the same order in all three entry points: backward's P = exp(s - lse) is the forward's.
    FWD_LOAD_Q: lines(NV, (c) => `let q${c} = ${ld(at('fq', 'qo', c))};`),
    FWD_INIT: lines(NV, (c) => `var a${c} = ${zero}; var ab${c} = ${zero};`),
    FWD_SCORE: `    let s = ${sum((c) => `dot(q${c}, ${rd('fk', 'ko', `${c}u`)})`)} * scale;`,
    FWD_RESCALE: lines2(NV, (c) => `  ab${c} = ab${c} * corr;`),
    FWD_RESCALE_TOTAL: lines2(NV, (c) => `  a${c} = a${c} * corr;`),
    FWD_UPDATE: lines2(NV, (c) => `ab${c} = fma(${VT}(p), ${rd('fv', 'ko', `${c}u`)}, ab${c});`),
    FWD_FOLD: lines2(NV, (c) => `a${c} = a${c} + ab${c}; ab${c} = ${zero};`),
    FWD_STORE: lines(NV, (c) => `fo[qo + ${c}u] = ${st(`a${c} * inv`)};`),
    // backward_q
    BQ_LOAD: lines(NV, (c) => `let q${c} = ${ld(at('gq', 'qo', c))}; let d${c} = ${ldo(at('gdo', 'qo', c))};`),
    BQ_D: `  let D = ${sum((c) => `dot(d${c}, ${ld(at('gout', 'qo', c))})`)};`,
    BQ_INIT: lines(NV, (c) => `var g${c} = ${zero}; var gb${c} = ${zero};`),
    BQ_LOAD_K: lines2(NV, (c) => `let k${c} = ${rd('gk', 'ko', `${c}u`)};`),
    BQ_SCORE_DP: `    let s = ${sum((c) => `dot(q${c}, k${c})`)} * scale;\n    let dp = ${sum((c) => `dot(d${c}, ${rd('gv', 'ko', `${c}u`)})`)};`,
    BQ_UPDATE: lines2(NV, (c) => `gb${c} = fma(${VT}(ds), k${c}, gb${c});`),
    BQ_FOLD: lines2(NV, (c) => `g${c} = g${c} + gb${c}; gb${c} = ${zero};`),
    BQ_STORE: lines(NV, (c) => `gdq[qo + ${c}u] = ${st(`g${c} * scale`)};`),
    BKV_LOAD: lines(NV, (c) => `let k${c} = ${ld(at('hk', 'ko', c))}; let v${c} = ${ld(at('hv', 'ko', c))};`),
    BKV_INIT: lines(NV, (c) => `var dk${c} = ${zero}; var dv${c} = ${zero}; var dkb${c} = ${zero}; var dvb${c} = ${zero};`),
    BKV_LOAD_Q: lines2(NV, (c) => `let q${c} = ${rd('hq', 'qo', `${c}u`)}; let o${c} = ${rd('hdo', 'qo', `${c}u`)};`),
    BKV_SCORE_DP: `    let s = ${sum((c) => `dot(q${c}, k${c})`)} * scale;\n    let dp = ${sum((c) => `dot(o${c}, v${c})`)};`,
    BKV_UPDATE: lines2(NV, (c) => `dvb${c} = fma(${VT}(p), o${c}, dvb${c}); dkb${c} = fma(${VT}(ds), q${c}, dkb${c});`),
    BKV_FOLD: lines2(NV, (c) => `dk${c} = dk${c} + dkb${c}; dv${c} = dv${c} + dvb${c}; dkb${c} = ${zero}; dvb${c} = ${zero};`),
    BKV_STORE: lines(NV, (c) => `hdk[ko + ${c}u] = ${st(`dk${c} * scale`)}; hdv[ko + ${c}u] = ${st(`dv${c}`)};`),
  };
}

function loopedBlocks({ VT, zero, ld, ldo, st, rd }: Gen): Record<string, string> {
  const arr = `array<${VT}, NV>`;
  const each = (indent: string, body: string): string => `${indent}for (var c = 0u; c < u.nv; c++) { ${body} }`;
  return {
    FWD_LOAD_Q: `  var q: ${arr};\n${each('  ', `q[c] = ${ld('fq[qo + c]')};`)}`,
    FWD_INIT: `  var a: ${arr};\n  var ab: ${arr};\n${each('  ', `a[c] = ${zero}; ab[c] = ${zero};`)}`,
    FWD_SCORE: `    var s = 0.0;\n${each('    ', `s += dot(q[c], ${rd('fk', 'ko', 'c')});`)}\n    s *= scale;`,
    FWD_RESCALE: each('      ', 'ab[c] = ab[c] * corr;'),
    FWD_RESCALE_TOTAL: each('      ', 'a[c] = a[c] * corr;'),
    FWD_UPDATE: each('    ', `ab[c] = fma(${VT}(p), ${rd('fv', 'ko', 'c')}, ab[c]);`),
    FWD_FOLD: each('    ', `a[c] = a[c] + ab[c]; ab[c] = ${zero};`),
    FWD_STORE: each('  ', `fo[qo + c] = ${st('a[c] * inv')};`),
    BQ_LOAD: `  var q: ${arr};\n  var d: ${arr};\n${each('  ', `q[c] = ${ld('gq[qo + c]')}; d[c] = ${ldo('gdo[qo + c]')};`)}`,
    BQ_D: `  var D = 0.0;\n${each('  ', `D += dot(d[c], ${ld('gout[qo + c]')});`)}`,
    BQ_INIT: `  var g: ${arr};\n  var gb: ${arr};\n${each('  ', `g[c] = ${zero}; gb[c] = ${zero};`)}`,
    BQ_LOAD_K: '',
    BQ_SCORE_DP: `    var s = 0.0;\n    var dp = 0.0;\n${each('    ', `s += dot(q[c], ${rd('gk', 'ko', 'c')}); dp += dot(d[c], ${rd('gv', 'ko', 'c')});`)}\n    s *= scale;`,
    BQ_UPDATE: each('    ', `gb[c] = fma(${VT}(ds), ${rd('gk', 'ko', 'c')}, gb[c]);`),
    BQ_FOLD: each('    ', `g[c] = g[c] + gb[c]; gb[c] = ${zero};`),
    BQ_STORE: each('  ', `gdq[qo + c] = ${st('g[c] * scale')};`),
    BKV_LOAD: `  var k: ${arr};\n  var v: ${arr};\n${each('  ', `k[c] = ${ld('hk[ko + c]')}; v[c] = ${ld('hv[ko + c]')};`)}`,
    BKV_INIT: `  var dk: ${arr};\n  var dv: ${arr};\n  var dkb: ${arr};\n  var dvb: ${arr};\n${each('  ', `dk[c] = ${zero}; dv[c] = ${zero}; dkb[c] = ${zero}; dvb[c] = ${zero};`)}`,
    BKV_LOAD_Q: '',
    BKV_SCORE_DP: `    var s = 0.0;\n    var dp = 0.0;\n${each('    ', `s += dot(${rd('hq', 'qo', 'c')}, k[c]); dp += dot(${rd('hdo', 'qo', 'c')}, v[c]);`)}\n    s *= scale;`,
    BKV_UPDATE: each('    ', `dvb[c] = fma(${VT}(p), ${rd('hdo', 'qo', 'c')}, dvb[c]); dkb[c] = fma(${VT}(ds), ${rd('hq', 'qo', 'c')}, dkb[c]);`),
    BKV_FOLD: each('    ', `dk[c] = dk[c] + dkb[c]; dv[c] = dv[c] + dvb[c]; dkb[c] = ${zero}; dvb[c] = ${zero};`),
    BKV_STORE: each('  ', `hdk[ko + c] = ${st('dk[c] * scale')}; hdv[ko + c] = ${st('dv[c]')};`),
  };
}

function check(rt: Backend, d: AttentionDims, what: string, ...ts: Tensor[]): void {
  const { B, T, H, hd } = d;
  for (const [name, v] of Object.entries({ B, T, H, hd }))
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${name}=${v} must be a positive integer`);
  const maxGrid = rt.policy.limits.maxComputeWorkgroupsPerDimension;
  if (B > maxGrid || H > maxGrid) throw new Error(`${what}: B=${B} and H=${H} must be <= ${maxGrid} (grid dimensions)`);
  const n = B * T * H * hd;
  for (const t of ts) {
    if (t.size !== n) throw new Error(`${what}: ${t} does not hold B*T*H*hd = ${B}*${T}*${H}*${hd} elements`);
    floatDtype(t, what);
  }
}

/** q and the tensors that must share its dtype (k, v, and o in the backward). */
function sameDtype(what: string, q: Tensor, others: Record<string, Tensor>): FloatDType {
  for (const [name, t] of Object.entries(others)) if (t.dtype !== q.dtype) throw new Error(`${what}: ${name} ${t} has not the dtype of q ${q}`);
  return q.dtype as FloatDType; // check() admitted f32 and f16 only
}

/**
 * FLOPs of one causal attention product over (q, k) pairs at or below the diagonal: 2 per
 * multiply-add of hd. The forward runs 2 such products (scores, P·V), backward_q 3 (scores, dP,
 * dQ) and backward_kv 4 (scores, dP, dK, dV): flash-style backwards recompute the scores.
 */
function causalProduct(d: AttentionDims): number {
  return 2 * d.B * d.H * ((d.T * (d.T + 1)) / 2) * d.hd;
}

function uniforms(d: AttentionDims) {
  return { T: d.T, H: d.H, scale: 1 / Math.sqrt(d.hd), nv: d.hd / (d.hd % 4 === 0 ? 4 : 2) };
}

type Entry = 'forward' | 'backward_q' | 'backward_kv';

/** Workgroup memory of a tiled entry point: two f32 tiles of `tile` head rows, and lse, D rows in backward_kv. */
export function tiledWorkgroupBytes(entry: Entry, hd: number, tile: number): number {
  return tile * (8 * hd + (entry === 'backward_kv' ? 8 : 0));
}

interface Launch {
  /** shaders/attention-<policy.attention.kernel>.wgsl */
  shader: 'attention-rows' | 'attention-tiled';
  /** Rows per workgroup. */
  rows: number;
  params: TemplateParams;
}

/** attentionTemplate, memoised per runtime: the generated strings are built once per head dim, form, dtypes and blocks. */
function template(rt: Backend, d: AttentionDims, dtype: FloatDType, doDtype: FloatDType, blocks?: AttentionBlocks): TemplateParams {
  const unroll = d.hd <= rt.policy.attention.unrollMaxHd;
  const key = `${d.hd}|${unroll}|${dtype}|${doDtype}|${blocks ? `${blocks.rows}x${blocks.tile}` : ''}`;
  return rt.memo('attention', key, () => attentionTemplate(d.hd, unroll, dtype, doDtype, blocks));
}

/**
 * The kernel, as the policy's attention.kernel says (policy.ts, docs/DESIGN.md §9). The GPU family
 * stages the rows all of a workgroup's invocations read in workgroup-memory tiles, loaded once per
 * workgroup (shaders/attention-tiled.wgsl); the CPU family keeps one barrier-free invocation per row
 * (shaders/attention-rows.wgsl): on lavapipe a workgroup's lanes are one CPU thread that already shares
 * each row it loads, and every barrier costs ~10 us.
 */
export function attentionKernelOf(policy: KernelPolicy): 'rows' | 'tiled' {
  return policy.attention.kernel;
}

/** The shader, rows per workgroup and template of an entry point, with the tiled kernel's block sizes. */
function launch(rt: Backend, d: AttentionDims, entry: Entry, dtype: FloatDType, doDtype: FloatDType): Launch {
  const policy = rt.policy;
  if (attentionKernelOf(policy) === 'rows') return { shader: 'attention-rows', rows: WG, params: template(rt, d, dtype, doDtype) };
  const limits = policy.limits;
  const limit = limits.maxComputeWorkgroupStorageSize;
  const a = policy.attention;
  let tile = a.tile;
  if (tile === null) {
    tile = a.maxTile;
    while (tile > 1 && tiledWorkgroupBytes(entry, d.hd, tile) > limit) tile /= 2;
  }
  const rows = a.rows;
  const blocks: AttentionBlocks = { rows, tile };
  const maxRows = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  if (!Number.isInteger(rows) || rows < 1 || rows > maxRows || !Number.isInteger(tile) || tile < 1)
    throw new Error(`attention: blocks ${JSON.stringify(blocks)} must be integers, rows 1..${maxRows}, tile >= 1`);
  const bytes = tiledWorkgroupBytes(entry, d.hd, tile);
  if (bytes > limit)
    throw new Error(`attention ${entry}: a tile of ${tile} rows of hd=${d.hd} needs ${bytes} B of workgroup memory, over the device's ${limit} B`);
  return { shader: 'attention-tiled', rows, params: template(rt, d, dtype, doDtype, blocks) };
}

function run(rt: Backend, l: Launch, entry: Entry, d: AttentionDims, bindings: Record<string, Tensor>, flops: number): void {
  rt.dispatch(rt.kernel({ shader: l.shader, entry, params: l.params }), bindings, [Math.ceil(d.T / l.rows), d.H, d.B], uniforms(d), { flops });
}

/**
 * Causal attention forward: o [B, T, H*hd] (shape and dtype of q) and the row logsumexp
 * lse [B, H, T] (f32). q, k, v share one dtype, f32 or f16; the math is f32.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, d: AttentionDims): { o: Tensor; lse: Tensor } {
  check(q.rt, d, 'attention', q, k, v);
  const dtype = sameDtype('attention', q, { k, v });
  const rt = q.rt;
  const o = rt.empty(q.shape, dtype, 'attention.o');
  const lse = rt.empty([d.B, d.H, d.T], 'f32', 'attention.lse');
  // dO is not bound by the forward: its slot takes q's dtype, so one template serves both.
  run(rt, launch(rt, d, 'forward', dtype, dtype), 'forward', d, { fq: q, fk: k, fv: v, fo: o, flse: lse }, 2 * causalProduct(d));
  return { o, lse };
}

/**
 * Causal attention backward from dO, the inputs and the forward's o and lse. q, k, v and o share
 * one dtype (f32 or f16); dO is f32 or f16 independently; lse is f32. dq, dk, dv get q's dtype.
 */
export function attentionBackward(
  dO: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  d: AttentionDims,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  check(q.rt, d, 'attentionBackward', dO, q, k, v, o);
  const dtype = sameDtype('attentionBackward', q, { k, v, o });
  if (lse.size !== d.B * d.H * d.T) throw new Error(`attentionBackward: lse ${lse} should be [B, H, T]`);
  if (lse.dtype !== 'f32') throw new Error(`attentionBackward: lse ${lse} must be f32`);
  const rt = q.rt;
  const doDtype = dO.dtype as FloatDType; // check() admitted f32 and f16 only
  const dq = rt.empty(q.shape, dtype, 'attention.dq');
  const D = rt.empty([d.B, d.H, d.T], 'f32', 'attention.D');
  run(
    rt,
    launch(rt, d, 'backward_q', dtype, doDtype),
    'backward_q',
    d,
    { gq: q, gk: k, gv: v, gout: o, gdo: dO, glse: lse, gdq: dq, gD: D },
    3 * causalProduct(d),
  );
  const dk = rt.empty(k.shape, dtype, 'attention.dk');
  const dv = rt.empty(v.shape, dtype, 'attention.dv');
  run(
    rt,
    launch(rt, d, 'backward_kv', dtype, doDtype),
    'backward_kv',
    d,
    { hq: q, hk: k, hv: v, hdo: dO, hlse: lse, hD: D, hdk: dk, hdv: dv },
    4 * causalProduct(d),
  );
  D.dispose(); // queue order keeps it alive for backward_kv
  return { dq, dk, dv };
}
