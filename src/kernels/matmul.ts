/**
 * Matmul kernels: C = epilogue(alpha · op(A)·op(B)), plain / batched / grouped-by-expert.
 *
 *   matmul(a, b, opts)                        A·B, Aᵀ·B, A·Bᵀ, Aᵀ·Bᵀ by flags (never by copies),
 *                                             batched (a leading dim on A and/or B, a 2-D
 *                                             operand broadcasts), fused bias/activation/
 *                                             residual/alpha, `accumulate` into `out`.
 *   matmulBackward(dy, a, b, opts)            dA, dB of the above (no epilogue), by flags.
 *   groupedMatmul(x, w, offsets, opts)        MoE experts: rows offsets[e]..offsets[e+1] of x
 *                                             times W[e], all experts in one dispatch.
 *   groupedMatmulWeightGrad(dy, x, offsets)   dW[e] = dY[rows e]ᵀ · X[rows e], one dispatch.
 *
 * Epilogue order: v = act(alpha·acc + bias[n]) + residual[m,n]; with `accumulate`, out += v.
 * Mixed precision: A, B, the residual and C are each stored as f32 or f16 (independently);
 * loads widen to f32, products, accumulation and the epilogue run in f32, and the store
 * narrows to C's type. The bias is always f32. f16 needs the device's shader-f16 feature.
 * Token counts stay on the GPU: offsets is read by the kernel, never by this wrapper.
 * WGSL is generated here (unrolled register blocks) into the slots of shaders/matmul.wgsl.
 */
import { floatDtype, floatStorage, type FloatDType, type Tensor, type Backend } from './tensor.ts';
import { resolveConfig, type MatmulConfig, type MatmulShape } from './matmul-config.ts';

export type Activation = 'none' | 'relu' | 'silu' | 'gelu-tanh';

/** Storage type of a matmul operand or output (the math is always f32). */
export type { FloatDType } from './tensor.ts';

export interface EpilogueOptions {
  /** Per-output-column bias, shape [N]. */
  bias?: Tensor;
  activation?: Activation;
  /** Added after the activation; same shape as the output. */
  residual?: Tensor;
  /** Scales op(A)·op(B) before the bias. Default 1. */
  alpha?: number;
  /** Write into this tensor (shape must match the output); its dtype is the output's. */
  out?: Tensor;
  /**
   * Storage type of a newly allocated output (default: the first operand's dtype). With `out`
   * it may be omitted or must equal out.dtype.
   */
  outDtype?: FloatDType;
  /** out += result (requires `out`): gradients accumulate in place. */
  accumulate?: boolean;
  label?: string;
  /** Override the tile configuration (benchmarks, tests of every code path). */
  config?: Partial<MatmulConfig>;
}

export interface MatmulOptions extends EpilogueOptions {
  transA?: boolean;
  transB?: boolean;
}

export interface GroupedMatmulOptions extends Omit<EpilogueOptions, 'bias'> {
  /** w is [E, N, K] (nn.Linear weights stacked) when true (default), [E, K, N] when false. */
  transB?: boolean;
}

type Mode = 'plain' | 'segk' | 'grouped';

/**
 * scalar ('f32': the historical name, it means one element per load whatever the storage type);
 * vec4 of 4 consecutive k ('k4'); vec4 of 4 consecutive rows at one k ('r4').
 */
export type LoadMode = 'f32' | 'k4' | 'r4';

export interface KernelDesc {
  mode: Mode;
  transA: boolean;
  transB: boolean;
  cfg: MatmulConfig;
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

const ACT: Record<Activation, string> = {
  none: 'v',
  relu: 'max(v, 0.0)',
  silu: 'v / (1.0 + exp(-v))',
  // tanh's argument is clamped: some tanh lowerings compute exp(2x)/.. and overflow to NaN,
  // and tanh(±10) already equals ±1 in f32.
  'gelu-tanh': '0.5 * v * (1.0 + tanh(clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -10.0, 10.0)))',
};

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

function operands(d: KernelDesc): { A: Operand; B: Operand } {
  const A: Operand = {
    name: 'A',
    mode: d.loadA,
    type: d.typeA ?? 'f32',
    rows: 'u.M',
    kStride4: '(u.M >> 2u)',
    base: (x) => (d.transA ? `aOff + ${x}` : `aOff + ${x} * u.K`),
    kStride: d.transA ? 'u.M' : '1',
  };
  const B: Operand = {
    name: 'B',
    mode: d.loadB,
    type: d.typeB ?? 'f32',
    rows: 'u.N',
    kStride4: '(u.N >> 2u)',
    base: (x) => (d.transB ? `bOff + ${x} * u.K` : `bOff + ${x}`),
    kStride: d.transB ? '1' : 'u.N',
  };
  return { A, B };
}

const SWZ = ['x', 'y', 'z', 'w'];

/** A load of storage type `t` widened to f32 (identity for f32, so the f32 kernels are unchanged). */
function widen(t: FloatDType, expr: string, vec = false): string {
  return t === 'f32' ? expr : `${vec ? 'vec4<f32>' : 'f32'}(${expr})`;
}

/** Generate the template values of shaders/matmul.wgsl for one specialisation. */
export function generateMatmul(d: KernelDesc): Record<string, string | number> {
  const { cfg } = d;
  const { A, B } = operands(d);
  const D = cfg.lane === 'm' ? A : B; // divergent (per-lane) operand
  const S = cfg.lane === 'm' ? B : A; // operand shared by the lanes of a workgroup row
  const TL = cfg.tl;
  const TU = cfg.tu;
  const RT = cfg.wgL * TL;
  const lenU = cfg.lane === 'm' ? 'u.N' : 'u.M';
  const I = (n: number) => Array.from({ length: n }, (_, i) => i);

  const tC = d.typeC ?? 'f32';
  const tR = d.typeR ?? 'f32';

  // ---- bindings (vec4<f16> has 8-byte alignment: the same element-offset % 4 conditions as vec4<f32>)
  let slot = 0;
  const bind = (decl: string) => `@group(0) @binding(${slot++}) ${decl};`;
  const bindings = [
    bind(`var<storage, read> A: array<${d.loadA === 'f32' ? A.type : `vec4<${A.type}>`}>`),
    bind(`var<storage, read> B: array<${d.loadB === 'f32' ? B.type : `vec4<${B.type}>`}>`),
    bind(`var<storage, read_write> C: array<${tC}>`),
  ];
  if (d.bias) bindings.push(bind('var<storage, read> bias: array<f32>'));
  if (d.residual) bindings.push(bind(`var<storage, read> R: array<${tR}>`));
  const f16 = [A.type, B.type, tC, ...(d.residual ? [tR] : [])].includes('f16');
  if (d.mode !== 'plain') bindings.push(bind('var<storage, read> offsets: array<u32>'));

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
    // Row tile wid.x: walk the experts' tile counts (uniform loads, E is small) to find
    // which expert and which of its row tiles this is; tiles past the last expert exit.
    s.push(
      '  var e = 0u;',
      '  var first = 0u;',
      '  var lStart = 0u;',
      '  var lEnd = 0u;',
      '  var found = false;',
      '  for (var i = 0u; i < u.E; i += 1u) {',
      '    let r0 = offsets[i];',
      '    let r1 = max(offsets[i + 1u], r0);',
      `    let nt = (r1 - r0 + ${RT - 1}u) / ${RT}u;`,
      '    if (wid.x < first + nt) {',
      `      e = i; lStart = r0 + (wid.x - first) * ${RT}u; lEnd = r1; found = true;`,
      '      break;',
      '    }',
      '    first += nt;',
      '  }',
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
      if (kk % 4 === 0) for (const r of I(n)) out.push(`    let ${tag}v${r}_${q} = ${widen(op.type, `${op.name}[${tag}${r} + (k >> 2u)${q ? ` + ${q}u` : ''}]`, true)};`);
      return (r) => `${tag}v${r}_${q}.${SWZ[kk % 4]}`;
    }
    if (op.mode === 'r4') {
      for (let g = 0; g < n / 4; g++) out.push(`    let ${tag}w${g}_${kk} = ${widen(op.type, `${op.name}[${tag}${g} + ${kIdx(kk)} * ${op.kStride4}]`, true)};`);
      return (r) => `${tag}w${Math.floor(r / 4)}_${kk}.${SWZ[r % 4]}`;
    }
    const k = kIdx(kk);
    for (const r of I(n)) out.push(`    let ${tag}x${r}_${kk} = ${widen(op.type, op.kStride === '1' ? `${op.name}[${tag}${r} + ${k}]` : `${op.name}[${tag}${r} + ${k} * ${op.kStride}]`)};`);
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
      epi.push(`    if (l${i} < lEnd) {`);
      epi.push(`      let idx = cOff + ${row} * u.N + ${col};`);
      const v = d.bias ? `fma(c${i}_${j}, u.alpha, bias[${col}])` : `c${i}_${j} * u.alpha`;
      let e = `act(${v})`;
      if (d.residual) e += ` + ${widen(tR, 'R[idx]')}`;
      if (d.accumulate) e += ` + ${widen(tC, 'C[idx]')}`;
      epi.push(`      C[idx] = ${tC === 'f32' ? e : `${tC}(${e})`};`, '    }');
    }
    epi.push('  }');
  }

  return {
    ENABLE: f16 ? 'enable f16;' : '',
    BINDINGS: bindings.join('\n'),
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

function kernelKey(d: KernelDesc): string {
  const c = d.cfg;
  return `${d.mode}${d.transA ? 'T' : 'N'}${d.transB ? 'T' : 'N'} ${c.lane}${c.wgL}x${c.wgU} ${c.tl}x${c.tu}k${c.ku} a:${d.loadA} b:${d.loadB}` +
    `${d.bias ? ' bias' : ''}${d.activation !== 'none' ? ` ${d.activation}` : ''}${d.residual ? ' res' : ''}${d.accumulate ? ' acc' : ''}` +
    ` types:${d.typeA ?? 'f32'},${d.typeB ?? 'f32'},${d.typeC ?? 'f32'}${d.residual ? `,${d.typeR ?? 'f32'}` : ''}`;
}

const generated = new Map<string, Record<string, string | number>>();

function kernelFor(rt: Backend, d: KernelDesc) {
  const key = kernelKey(d);
  let params = generated.get(key);
  if (!params) generated.set(key, (params = generateMatmul(d)));
  return rt.kernel({ shader: 'matmul', params });
}

interface Dims {
  M: number;
  N: number;
  K: number;
  E?: number;
  aBatch?: number;
  bBatch?: number;
  cBatch?: number;
  alpha?: number;
  aBase?: number;
  bBase?: number;
  cBase?: number;
}

function uniforms(p: Dims): Uint32Array {
  const buf = new ArrayBuffer(48);
  const u = new Uint32Array(buf);
  u.set([p.M, p.N, p.K, p.E ?? 0, p.aBatch ?? 0, p.bBatch ?? 0, p.cBatch ?? 0, 0, p.aBase ?? 0, p.bBase ?? 0, p.cBase ?? 0, 0]);
  new Float32Array(buf)[7] = p.alpha ?? 1;
  return u;
}

const MAX_GROUPS = 65535;

function checkGrid(what: string, g: readonly [number, number, number]): void {
  if (g.some((x) => x > MAX_GROUPS)) throw new Error(`${what}: grid [${g.join(', ')}] exceeds ${MAX_GROUPS} workgroups per dimension`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkF32(what: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${what}: ${t} must be f32`);
}

function checkFloat(what: string, ...ts: Tensor[]): void {
  for (const t of ts) floatDtype(t, what);
}

function outputFor(rt: Backend, shape: number[], opts: Pick<EpilogueOptions, 'out' | 'outDtype' | 'accumulate' | 'label'>, what: string, dflt: FloatDType): Tensor {
  if (opts.accumulate && !opts.out) throw new Error(`${what}: accumulate needs an existing 'out' tensor`);
  if (opts.out) {
    if (!sameShape(opts.out.shape, shape)) throw new Error(`${what}: out ${opts.out} must have shape [${shape.join(', ')}]`);
    checkFloat(what, opts.out);
    if (opts.outDtype !== undefined && opts.outDtype !== opts.out.dtype) throw new Error(`${what}: outDtype ${opts.outDtype} differs from out ${opts.out}`);
    return opts.out;
  }
  return rt.empty(shape, floatStorage(rt, opts.outDtype ?? dflt, `${what}: outDtype`), opts.label ?? what);
}

function checkEpilogue(what: string, shape: number[], N: number, opts: EpilogueOptions): void {
  if (opts.bias) {
    checkF32(what, opts.bias);
    if (!sameShape(opts.bias.shape, [N])) throw new Error(`${what}: bias ${opts.bias} must have shape [${N}]`);
  }
  if (opts.residual) {
    checkFloat(what, opts.residual);
    if (!sameShape(opts.residual.shape, shape)) throw new Error(`${what}: residual ${opts.residual} must have shape [${shape.join(', ')}]`);
    if (opts.out && opts.residual === opts.out) throw new Error(`${what}: residual must not be 'out' (use accumulate)`);
  }
}

/** Dimensions of a 2-D or 3-D operand: [batch, rows, cols]. */
function dims3(t: Tensor, what: string): [number, number, number] {
  if (t.shape.length === 2) return [1, t.shape[0]!, t.shape[1]!];
  if (t.shape.length === 3) return [t.shape[0]!, t.shape[1]!, t.shape[2]!];
  throw new Error(`${what}: ${t} must be 2-D or 3-D`);
}

/**
 * C = act(alpha · op(A)·op(B) + bias) + residual  (C += … with accumulate).
 * A: [M,K] ([K,M] with transA), optionally with a leading batch dim; B likewise [K,N] / [N,K].
 * Output [M,N], or [batch,M,N] when either operand is 3-D.
 * a, b (and the residual) are f32 or f16 each; the output is stored as opts.outDtype (default
 * a's dtype) or as `out` is; the bias is f32. All math is f32.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const what = opts.label ?? 'matmul';
  checkFloat(what, a, b);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const [bA, ra, ca] = dims3(a, what);
  const [bB, rb, cb] = dims3(b, what);
  const [M, K] = transA ? [ca, ra] : [ra, ca];
  const [Kb, N] = transB ? [cb, rb] : [rb, cb];
  if (K !== Kb) throw new Error(`${what}: inner dimensions differ: ${a} (transA=${transA}) · ${b} (transB=${transB})`);
  if (bA !== bB && bA !== 1 && bB !== 1) throw new Error(`${what}: batch sizes ${bA} and ${bB} differ`);
  const batch = Math.max(bA, bB);
  const batched = a.shape.length === 3 || b.shape.length === 3;
  const shape = batched ? [batch, M, N] : [M, N];
  checkEpilogue(what, shape, N, opts);
  const out = outputFor(a.rt, shape, opts, what, a.dtype as FloatDType);
  if (batch === 0 || M === 0 || N === 0) return out;

  // A batched, non-transposed A times a shared B is one tall matmul: fold the batch into M.
  const fold = batch > 1 && bB === 1 && bA === batch && !transA;
  const dims: Dims = fold
    ? { M: M * batch, N, K, cBatch: 0, alpha: opts.alpha }
    : { M, N, K, aBatch: bA > 1 ? M * K : 0, bBatch: bB > 1 ? K * N : 0, cBatch: M * N, alpha: opts.alpha };
  record(a, b, out, { ...dims, batch: fold ? 1 : batch, transA, transB }, opts, 'plain');
  return out;
}

interface PlainProblem extends Dims {
  batch: number;
  transA: boolean;
  transB: boolean;
}

/**
 * Load mode of one operand. k4: its K axis is contiguous (A not transposed, B transposed).
 * r4: its row index is contiguous at fixed k (Aᵀ stored [K,M], B stored [K,N]) and the
 * invocation's block along that index is a multiple of 4.
 */
function loadMode(cfg: MatmulConfig, o: { kContiguous: boolean; K: number; rows: number; block: number; offsets: number[]; segK?: boolean }): LoadMode {
  if (!cfg.vec4 || !o.offsets.every((x) => x % 4 === 0)) return 'f32';
  // segK's contraction starts at a data-dependent row, so its K axis is never vec4-aligned.
  if (o.kContiguous) return !o.segK && o.K % 4 === 0 && cfg.ku % 4 === 0 ? 'k4' : 'f32';
  return o.rows % 4 === 0 && o.rows >= 4 && o.block % 4 === 0 ? 'r4' : 'f32';
}

function modes(cfg: MatmulConfig, p: { M: number; N: number; K: number; transA: boolean; transB: boolean; aOffsets: number[]; bOffsets: number[]; segK?: boolean }): { loadA: LoadMode; loadB: LoadMode } {
  const blockA = cfg.lane === 'm' ? cfg.tl : cfg.tu;
  const blockB = cfg.lane === 'm' ? cfg.tu : cfg.tl;
  return {
    loadA: loadMode(cfg, { kContiguous: !p.transA, K: p.K, rows: p.M, block: blockA, offsets: p.aOffsets, segK: p.segK }),
    loadB: loadMode(cfg, { kContiguous: p.transB, K: p.K, rows: p.N, block: blockB, offsets: p.bOffsets, segK: p.segK }),
  };
}

/** The storage types of a dispatch's operands (checked by the callers). */
function types(a: Tensor, b: Tensor, c: Tensor, r?: Tensor): Pick<KernelDesc, 'typeA' | 'typeB' | 'typeC' | 'typeR'> {
  return { typeA: a.dtype as FloatDType, typeB: b.dtype as FloatDType, typeC: c.dtype as FloatDType, typeR: (r?.dtype ?? 'f32') as FloatDType };
}

function record(a: Tensor, b: Tensor, out: Tensor, p: PlainProblem, opts: EpilogueOptions, mode: 'plain' | 'segk', offsets?: Tensor): void {
  const rt = a.rt;
  const shape: MatmulShape = { M: p.M, N: p.N, K: p.K, transA: p.transA, transB: p.transB };
  const cfg = resolveConfig(shape, opts.config);
  const seg = mode === 'segk';
  const d: KernelDesc = {
    mode,
    transA: p.transA,
    transB: p.transB,
    cfg,
    ...modes(cfg, { ...p, aOffsets: [p.aBatch ?? 0, p.aBase ?? 0], bOffsets: [p.bBatch ?? 0, p.bBase ?? 0], segK: seg }),
    bias: !!opts.bias,
    residual: !!opts.residual,
    activation: opts.activation ?? 'none',
    accumulate: !!opts.accumulate,
    ...types(a, b, out, opts.residual),
  };
  const [lenL, lenU] = cfg.lane === 'm' ? [p.M, p.N] : [p.N, p.M];
  const grid: [number, number, number] = [Math.ceil(lenL / (cfg.wgL * cfg.tl)), Math.ceil(lenU / (cfg.wgU * cfg.tu)), p.batch];
  checkGrid(opts.label ?? 'matmul', grid);
  const bindings: Tensor[] = [a, b, out];
  if (opts.bias) bindings.push(opts.bias);
  if (opts.residual) bindings.push(opts.residual);
  if (offsets) bindings.push(offsets);
  rt.dispatch(kernelFor(rt, d), bindings, grid, uniforms(p));
}

export interface MatmulBackwardOptions {
  transA?: boolean;
  transB?: boolean;
  /** Skip a gradient that is not needed. */
  needA?: boolean;
  needB?: boolean;
  /** Write (or, with accumulate, add) into these instead of allocating; f32 or f16 either way. */
  outA?: Tensor;
  outB?: Tensor;
  accumulate?: boolean;
  config?: Partial<MatmulConfig>;
}

/**
 * Gradients of C = op(A)·op(B) (no epilogue; apply the activation's derivative to dy first).
 * dA has A's shape and dB has B's shape; a broadcast (2-D) operand gets the sum over the batch.
 * dy, a and b are each f32 or f16; a new dA is allocated in a's dtype and dB in b's (an f32
 * weight gets an f32 gradient from f16 activations). The sum over a broadcast operand's batch
 * accumulates slice by slice in the target's storage type (rounded per slice when f16).
 */
export function matmulBackward(dy: Tensor, a: Tensor, b: Tensor, opts: MatmulBackwardOptions = {}): { da?: Tensor; db?: Tensor } {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const rt = a.rt;
  checkFloat('matmulBackward', dy, a, b);
  if (opts.outA) checkFloat('matmulBackward', opts.outA);
  if (opts.outB) checkFloat('matmulBackward', opts.outB);
  const [bA, ra, ca] = dims3(a, 'matmulBackward');
  const [bB, rb, cb] = dims3(b, 'matmulBackward');
  const [M, K] = transA ? [ca, ra] : [ra, ca];
  const N = transB ? rb : cb;
  const batch = Math.max(bA, bB);
  const [bY, my, ny] = dims3(dy, 'matmulBackward');
  if (my !== M || ny !== N || (bY !== batch && !(bY === 1 && batch === 1))) throw new Error(`matmulBackward: dy ${dy} does not match the product's [${batch}, ${M}, ${N}]`);
  const res: { da?: Tensor; db?: Tensor } = {};
  const acc = opts.accumulate ?? false;
  const cfg = opts.config;

  // One gradient = op(X)·op(Y) per batch slice; `sum` reduces over the batch into a 2-D
  // target (the broadcast operand) by accumulating slice after slice.
  const grad = (target: Tensor, x: Tensor, y: Tensor, tx: boolean, ty: boolean, xb: number, yb: number, R: number, C: number, Kc: number, sum: boolean, accumulate: boolean) => {
    const xs = xb > 1 ? R * Kc : 0;
    const ys = yb > 1 ? Kc * C : 0;
    if (!sum) {
      record(x, y, target, { M: R, N: C, K: Kc, aBatch: xs, bBatch: ys, cBatch: R * C, batch, transA: tx, transB: ty }, { accumulate, out: target, config: cfg }, 'plain');
      return;
    }
    for (let s = 0; s < batch; s++) {
      record(x, y, target, { M: R, N: C, K: Kc, aBase: s * xs, bBase: s * ys, batch: 1, transA: tx, transB: ty }, { accumulate: accumulate || s > 0, out: target, config: cfg }, 'plain');
    }
  };
  const alloc = (like: Tensor, given: Tensor | undefined, label: string) => {
    if (given) {
      if (!sameShape(given.shape, like.shape)) throw new Error(`matmulBackward: ${label} ${given} must have shape [${like.shape.join(', ')}]`);
      return given;
    }
    if (acc) throw new Error(`matmulBackward: accumulate needs out${label === 'dA' ? 'A' : 'B'}`);
    return rt.empty(like.shape, like.dtype, label);
  };
  if (batch === 0) return res;

  if (opts.needA ?? true) {
    const da = alloc(a, opts.outA, 'dA');
    const sum = bA === 1 && batch > 1;
    // dY is [M,N]; dA stored like A: [M,K] or [K,M].
    if (!transA && !transB) grad(da, dy, b, false, true, batch, bB, M, K, N, sum, acc); // dY·Bᵀ
    else if (!transA && transB) grad(da, dy, b, false, false, batch, bB, M, K, N, sum, acc); // dY·B
    else if (transA && !transB) grad(da, b, dy, false, true, bB, batch, K, M, N, sum, acc); // B·dYᵀ
    else grad(da, b, dy, true, true, bB, batch, K, M, N, sum, acc); // Bᵀ·dYᵀ
    res.da = da;
  }
  if (opts.needB ?? true) {
    const db = alloc(b, opts.outB, 'dB');
    const sum = bB === 1 && batch > 1;
    if (sum && !transA && !transB && bA === batch) {
      // Σ_b A_bᵀ·dY_b with row-major A_b and dY_b is one matmul over the stacked rows.
      record(a, dy, db, { M: K, N, K: batch * M, batch: 1, transA: true, transB: false }, { accumulate: acc, out: db, config: cfg }, 'plain');
    } else if (sum && !transA && transB && bA === batch) {
      record(dy, a, db, { M: N, N: K, K: batch * M, batch: 1, transA: true, transB: false }, { accumulate: acc, out: db, config: cfg }, 'plain');
    } else if (!transA && !transB) grad(db, a, dy, true, false, bA, batch, K, N, M, sum, acc); // Aᵀ·dY
    else if (!transA && transB) grad(db, dy, a, true, false, batch, bA, N, K, M, sum, acc); // dYᵀ·A
    else if (transA && !transB) grad(db, a, dy, false, false, bA, batch, K, N, M, sum, acc); // A·dY
    else grad(db, dy, a, true, true, batch, bA, N, K, M, sum, acc); // dYᵀ·Aᵀ
    res.db = db;
  }
  return res;
}

function checkOffsets(what: string, offsets: Tensor): number {
  if (offsets.dtype !== 'u32' || offsets.shape.length !== 1 || offsets.size < 2) throw new Error(`${what}: offsets ${offsets} must be u32 [E+1]`);
  return offsets.size - 1;
}

/**
 * Grouped (MoE expert) matmul: out[r] = x[r] · op(W[e]) for offsets[e] <= r < offsets[e+1].
 * x: [R, K]; w: [E, N, K] (transB, default) or [E, K, N]; offsets: u32 [E+1] on the GPU
 * (never read back). Rows outside every expert's range are not written.
 * x, w (and the residual) are f32 or f16 each; the output is opts.outDtype (default x's dtype).
 */
export function groupedMatmul(x: Tensor, w: Tensor, offsets: Tensor, opts: GroupedMatmulOptions = {}): Tensor {
  const what = opts.label ?? 'groupedMatmul';
  checkFloat(what, x, w);
  const E = checkOffsets(what, offsets);
  const transB = opts.transB ?? true;
  if (x.shape.length !== 2 || w.shape.length !== 3) throw new Error(`${what}: x ${x} must be [R,K] and w ${w} [E,N,K] or [E,K,N]`);
  const [R, K] = x.shape as [number, number];
  const [Ew, w1, w2] = w.shape as [number, number, number];
  const [N, Kw] = transB ? [w1, w2] : [w2, w1];
  if (Ew !== E) throw new Error(`${what}: w has ${Ew} experts, offsets describe ${E}`);
  if (Kw !== K) throw new Error(`${what}: x ${x} and w ${w} disagree on K`);
  const shape = [R, N];
  checkEpilogue(what, shape, N, opts);
  const out = outputFor(x.rt, shape, opts, what, x.dtype as FloatDType);
  if (R === 0 || N === 0) return out;

  const cfg = resolveConfig({ M: R, N, K, transA: false, transB }, { ...opts.config, lane: 'm' });
  const d: KernelDesc = {
    mode: 'grouped',
    transA: false,
    transB,
    cfg,
    // Rows of x are data-dependent (never r4); W[e] starts at e·N·K.
    ...modes(cfg, { M: 1, N, K, transA: false, transB, aOffsets: [], bOffsets: [N * K] }),
    bias: false,
    residual: !!opts.residual,
    activation: opts.activation ?? 'none',
    accumulate: !!opts.accumulate,
    ...types(x, w, out, opts.residual),
  };
  // Upper bound of row tiles over all experts: sum_e ceil(n_e / T) <= ceil(R / T) + E.
  const grid: [number, number, number] = [Math.ceil(R / (cfg.wgL * cfg.tl)) + E, Math.ceil(N / (cfg.wgU * cfg.tu)), 1];
  checkGrid(what, grid);
  const bindings: Tensor[] = [x, w, out];
  if (opts.residual) bindings.push(opts.residual);
  bindings.push(offsets);
  x.rt.dispatch(kernelFor(x.rt, d), bindings, grid, uniforms({ M: R, N, K, E, alpha: opts.alpha }));
  return out;
}

export interface GroupedWeightGradOptions {
  /** Write into this tensor ([E, N, K], f32 or f16). */
  out?: Tensor;
  /** Storage type of a newly allocated dW: f32 by default (a weight gradient), whatever dy and x are. */
  outDtype?: FloatDType;
  accumulate?: boolean;
  label?: string;
  config?: Partial<MatmulConfig>;
}

/**
 * Weight gradient of groupedMatmul with transB: dW[e] = dY[rows of e]ᵀ · X[rows of e] → [E, N, K].
 * One dispatch over all experts; an expert with no rows gets zeros (or is left as is with accumulate).
 * For the [E, K, N] weight layout, swap the arguments: groupedMatmulWeightGrad(x, dy, offsets).
 */
export function groupedMatmulWeightGrad(dy: Tensor, x: Tensor, offsets: Tensor, opts: GroupedWeightGradOptions = {}): Tensor {
  const what = opts.label ?? 'groupedMatmulWeightGrad';
  checkFloat(what, dy, x);
  const E = checkOffsets(what, offsets);
  if (dy.shape.length !== 2 || x.shape.length !== 2 || dy.shape[0] !== x.shape[0]) throw new Error(`${what}: dy ${dy} and x ${x} must be [R,N] and [R,K]`);
  const [R, N] = dy.shape as [number, number];
  const K = x.shape[1]!;
  const shape = [E, N, K];
  const out = outputFor(x.rt, shape, opts, what, 'f32');
  if (N === 0 || K === 0) return out;
  // Aᵀ·B with A = dY (op(A)[n, r] = dY[r, n]) and B = X, contraction over this expert's rows.
  record(dy, x, out, { M: N, N: K, K: R, E, cBatch: N * K, batch: E, transA: true, transB: false }, { accumulate: opts.accumulate, out, config: opts.config }, 'segk', offsets);
  return out;
}

/**
 * dX of groupedMatmul: dX[r] = dY[r] · W[e] (the transposed-flag product), one dispatch.
 * dX is allocated in dy's dtype unless opts.outDtype / opts.out say otherwise.
 */
export function groupedMatmulBackwardX(dy: Tensor, w: Tensor, offsets: Tensor, opts: GroupedMatmulOptions = {}): Tensor {
  return groupedMatmul(dy, w, offsets, { ...opts, transB: !(opts.transB ?? true), label: opts.label ?? 'groupedMatmulBackwardX' });
}
