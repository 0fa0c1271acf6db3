/**
 * The kernel policy: every device-dependent choice the kernel wrappers make, in ONE typed table
 * derived from DeviceCaps (docs/DESIGN.md §9). Wrappers read `rt.policy` and decide nothing
 * themselves; the Dawn runtime and the meta runtime (the planner) derive it with the same function
 * from the same caps, so a plan runs the kernels the device will run.
 *
 * The family (caps.family: `cpu` on a CPU adapter such as lavapipe, `gpu` otherwise, or forced by
 * WEBGPU_MOE_KERNELS / the config's `device.kernels`) picks each row's default. Anything else is
 * forced through ONE mechanism: a PolicyOverride, applied when the policy is derived —
 * `derivePolicy(caps, override)`, `new MetaRuntime(caps, override)`, or `rt.withPolicy(override, fn)`
 * for the work recorded inside `fn` (tests forcing a variant, the matmul autotune timing one,
 * benchmarks sweeping them).
 *
 * Why the families differ: on a CPU adapter a workgroup runs as SIMD lanes of one CPU thread, a
 * barrier costs ~10 us and storage loads are scalarised, so barrier-free kernels that walk chunks
 * serially win; on a GPU those are the wrong choices (workgroup trees, workgroup-memory tiles).
 */
import type { DeviceCaps, DeviceLimits, KernelFamily } from './caps.ts';

// ---------------------------------------------------------------------------------------------
// Matmul tilings (their generators: matmul-blocked.ts, matmul-tiled.ts; variants: matmul-config.ts)

/** The register-blocked kernel's tiling (see shaders/matmul-blocked.wgsl and matmul-config.ts). */
export interface MatmulConfig {
  /** Invocations along the lane dimension. */
  wgL: number;
  /** Invocations along the uniform dimension (1 keeps the uniform operand's loads uniform). */
  wgU: number;
  /** Outputs per invocation along the lane dimension (rows strided by wgL). */
  tl: number;
  /** Outputs per invocation along the uniform dimension (contiguous). */
  tu: number;
  /** K unroll of the main loop. */
  ku: number;
  /** Which output dimension runs across lanes: 'm' = rows of C, 'n' = columns of C. */
  lane: 'm' | 'n';
  /** vec4 loads along K for an operand whose K axis is contiguous (when K % 4 == 0). */
  vec4: boolean;
}

/** The workgroup-tiled kernel's tiling (see shaders/matmul-tiled.wgsl and matmul-tiled.ts). */
export interface TiledConfig {
  kind: 'tiled';
  /** Invocations along the tile's columns (N) and rows (M). */
  tx: number;
  ty: number;
  /** Outputs per invocation along M and N (strided by ty and tx). */
  rm: number;
  rn: number;
  /** Depth of a K tile. */
  bk: number;
  /** Load the next K tile into registers while multiplying the current one. */
  prefetch: boolean;
  /**
   * Unroll the walk over the K tile in the generator. Off by default: GPU compilers unroll a loop
   * of constant trip count themselves, and lavapipe's compile time grows with the unrolled code.
   */
  unrollK?: boolean;
}

/**
 * The CPU family's default: a classic 2-D register block (both operands per-invocation), vec4 loads
 * along K where contiguous, K unrolled by 4. On lavapipe (Mesa 25.0) every storage-buffer load whose
 * address is not a compile-time/push constant runs as a per-lane scalar loop, so what counts is
 * FMAs per loaded element (TL·TU per TL+TU) and elements per load instruction (vec4). The lane
 * dimension is chosen per layout (matmul-config.ts chooseLane). From the measured variant table,
 * bench/results/matmul-variants.md.
 */
export const DEFAULT_CONFIG: MatmulConfig = { wgL: 8, wgU: 8, tl: 8, tu: 4, ku: 4, lane: 'm', vec4: true };

/** The GPU family's default tile: 64 x 64 outputs per workgroup of 256, K tiles of 16, prefetched. */
export const DEFAULT_TILED: TiledConfig = { kind: 'tiled', tx: 16, ty: 16, rm: 4, rn: 4, bk: 16, prefetch: true };

/** The register-blocked tiling without its lane: unset, the lane follows the layout. */
export type BlockedTiling = Omit<MatmulConfig, 'lane'> & { lane?: MatmulConfig['lane'] };

// ---------------------------------------------------------------------------------------------
// The table

export interface MatmulPolicy {
  /** 'blocked': register-blocked, no workgroup memory (CPU family); 'tiled': workgroup-memory tiles (GPU family). */
  kind: 'blocked' | 'tiled';
  blocked: BlockedTiling;
  tiled: TiledConfig;
  /** Use the autotuned tiled configuration of a shape class where matmul-tune.ts has measured one. */
  tuned: boolean;
}

/**
 * Whether a reduction runs one thread per (output, chunk) with no barriers ("serial") or as a
 * workgroup tree: serial when there are at least `serialFromOutputs` outputs, or when each output
 * has fewer than `treeFromN` elements — except a single output when `scalarTree` (one workgroup
 * finishes a scalar in one pass where the serial path would need several).
 */
export interface ReducePolicy {
  serialFromOutputs: number;
  treeFromN: number;
  scalarTree: boolean;
}

export interface RmsnormPolicy {
  /** 'serial': one invocation per row, no barriers; 'parallel': one workgroup per row, tree reduction. */
  rows: 'serial' | 'parallel';
}

/** The fused dispatch plan's chunking (dispatch.ts chooseChunkTokens). */
export interface DispatchPolicy {
  /** Bounds on the number of token chunks (2·sqrt(N·k/E) clamped to them). */
  minChunks: number;
  maxChunks: number;
  /** Tokens per chunk, fixed (any positive value gives the same results); null: chosen per shape. */
  chunkTokens: number | null;
}

export interface AttentionPolicy {
  /** 'rows': one barrier-free invocation per row (shaders/attention-rows.wgsl); 'tiled': rows staged in workgroup-memory tiles (shaders/attention-tiled.wgsl). */
  kernel: 'rows' | 'tiled';
  /** Tiled kernel: query rows per workgroup (a GPU warp). */
  rows: number;
  /** Tiled kernel: head rows per staged tile; null = the largest power of two <= maxTile that the workgroup memory holds. */
  tile: number | null;
  maxTile: number;
  /** Largest head dim compiled as straight-line register code; above it, loops over private arrays. */
  unrollMaxHd: number;
}

export interface KernelPolicy {
  family: KernelFamily;
  /** Keys set by an override ('matmul.kind', 'attention.tile', ...), and 'family' when it was forced. */
  forced: readonly string[];
  /** The limits the wrappers size their grids and tiles by, and the runtimes validate against. */
  limits: Readonly<DeviceLimits>;
  matmul: Readonly<MatmulPolicy>;
  reduce: Readonly<ReducePolicy>;
  rmsnorm: Readonly<RmsnormPolicy>;
  dispatch: Readonly<DispatchPolicy>;
  attention: Readonly<AttentionPolicy>;
  /** Time the tiled matmul variants on this device before training (matmul-tune.ts). */
  autotune: boolean;
}

/**
 * What may be forced. Sections merge into the family's defaults field by field (the blocked tiling
 * too); a tiled configuration is taken whole. Giving `matmul.tiled` or `matmul.blocked` alone forces
 * that kernel, and a forced tiled configuration is used as is (not replaced by a tuned one). Limits
 * can only be lowered below the device's.
 */
export interface PolicyOverride {
  family?: KernelFamily;
  limits?: Partial<DeviceLimits>;
  matmul?: { kind?: MatmulPolicy['kind']; blocked?: Partial<BlockedTiling>; tiled?: TiledConfig; tuned?: boolean };
  reduce?: Partial<ReducePolicy>;
  rmsnorm?: Partial<RmsnormPolicy>;
  dispatch?: Partial<DispatchPolicy>;
  attention?: Partial<AttentionPolicy>;
  autotune?: boolean;
}

/** Anything a policy is read from: both runtimes (Backend.policy). */
export interface PolicySource {
  readonly policy: KernelPolicy;
}

const { lane: _lane, ...BLOCKED_DEFAULT } = DEFAULT_CONFIG;

/**
 * The register-blocked tiling on Mesa lavapipe from 26.0 (gallivm with divergence analysis, LLVM 19):
 * a workgroup of 64 invocations in one row shares the uniform operand's block, whose addresses no
 * longer depend on the invocation, so its loads become scalar loads + broadcasts (finding 1 of
 * bench/results/matmul-variants.md predicted it; bench/results/mesa-lane.md measured it, variant
 * v18 there, matmul-config.ts VARIANTS). The values do not change: every tiling sums K in the same order.
 */
export const MESA_26_BLOCKED: Omit<MatmulConfig, 'lane'> = { wgL: 64, wgU: 1, tl: 4, tu: 16, ku: 4, vec4: true };

/** Mesa's version from a lavapipe adapter's description ("llvmpipe: Mesa 26.1.6-1~bpo13+1 (LLVM 19.1.7)"), else null. */
export function lavapipeMesaVersion(description: string): { major: number; minor: number } | null {
  const m = /llvmpipe.*\bMesa (\d+)\.(\d+)/i.exec(description);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

/** The CPU family's register-blocked tiling for this driver: measured per driver (docs/DESIGN.md §9). */
function blockedFor(caps: DeviceCaps): Omit<MatmulConfig, 'lane'> {
  const mesa = lavapipeMesaVersion(caps.adapter.description);
  return mesa && mesa.major >= 26 ? MESA_26_BLOCKED : BLOCKED_DEFAULT;
}

/** The family's defaults: the measured choices of docs/DESIGN.md §9. */
function defaults(family: KernelFamily, caps: DeviceCaps): Omit<KernelPolicy, 'forced' | 'limits'> {
  const cpu = family === 'cpu';
  return {
    family,
    matmul: { kind: cpu ? 'blocked' : 'tiled', blocked: blockedFor(caps), tiled: DEFAULT_TILED, tuned: true },
    // CPU: barriers cost ~10 us on lavapipe, so serial unless a few outputs each need very many
    // elements; GPU: the tree unless an output has too few elements to fill a workgroup's lanes.
    reduce: cpu ? { serialFromOutputs: 4096, treeFromN: 1 << 16, scalarTree: true } : { serialFromOutputs: Infinity, treeFromN: 256, scalarTree: false },
    // Measured on lavapipe, [1024, 64]: ~4 ms per call for the tree, well under 1 ms serial.
    rmsnorm: { rows: cpu ? 'serial' : 'parallel' },
    // CPU: enough workgroups of 8 for a few cores (bench/dispatch.bench.ts sweeps it); GPU: what
    // thousands of lanes need, the caches absorb the quadratic term.
    dispatch: cpu ? { minChunks: 16, maxChunks: 256, chunkTokens: null } : { minChunks: 64, maxChunks: 1024, chunkTokens: null },
    attention: { kernel: cpu ? 'rows' : 'tiled', rows: 32, tile: null, maxTile: 32, unrollMaxHd: 64 },
    // The CPU family's blocked matmul is not tuned; nor is a GPU family forced onto a CPU adapter.
    autotune: family === 'gpu' && !caps.cpuAdapter,
  };
}

/** `o` with what a forced tiling implies made explicit: its kernel, and (a tiled one) no tuned replacement. */
function normalize(o: PolicyOverride): PolicyOverride {
  const m = o.matmul;
  if (!m || (!m.tiled && !m.blocked)) return o;
  return { ...o, matmul: { ...m, kind: m.kind ?? (m.tiled ? 'tiled' : 'blocked'), tuned: m.tuned ?? (m.tiled ? false : undefined) } };
}

/** `b` over `a`, section by section (what nested withPolicy calls apply). */
export function mergeOverrides(a: PolicyOverride, b: PolicyOverride): PolicyOverride {
  const na = normalize(a);
  const nb = normalize(b);
  const out: PolicyOverride = { ...na, ...nb };
  for (const k of ['limits', 'reduce', 'rmsnorm', 'dispatch', 'attention'] as const)
    if (na[k] || nb[k]) (out as Record<string, unknown>)[k] = { ...na[k], ...nb[k] };
  if (na.matmul || nb.matmul)
    out.matmul = {
      ...na.matmul,
      ...nb.matmul,
      ...(na.matmul?.blocked || nb.matmul?.blocked ? { blocked: { ...na.matmul?.blocked, ...nb.matmul?.blocked } } : {}),
    };
  return out;
}

/** Drop undefined fields, so `{ tile: undefined }` does not count as forcing a field. */
function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The policy of a device: the family's defaults from `caps`, with `override` applied. */
export function derivePolicy(caps: DeviceCaps, override: PolicyOverride = {}): KernelPolicy {
  const o = normalize(override);
  const family = o.family ?? caps.family;
  const d = defaults(family, caps);
  const forced: string[] = [];
  if (o.family !== undefined ? o.family !== caps.family || caps.familyForced : caps.familyForced) forced.push('family');
  const limits: DeviceLimits = { ...caps.limits };
  for (const [k, v] of Object.entries(defined(o.limits)) as [keyof DeviceLimits, number][]) {
    limits[k] = Math.min(caps.limits[k], v);
    forced.push(`limits.${k}`);
  }
  const section = <T extends object>(name: string, base: T, given: Partial<T> | undefined): T => {
    const g = defined(given);
    for (const k of Object.keys(g)) forced.push(`${name}.${k}`);
    return { ...base, ...g };
  };
  const m = defined(o.matmul);
  const matmul = section<MatmulPolicy>('matmul', d.matmul, { ...m, blocked: m.blocked ? { ...d.matmul.blocked, ...defined(m.blocked) } : undefined });
  if (o.autotune !== undefined) forced.push('autotune');
  return {
    family,
    forced,
    limits,
    matmul,
    reduce: section('reduce', d.reduce, o.reduce),
    rmsnorm: section('rmsnorm', d.rmsnorm, o.rmsnorm),
    dispatch: section('dispatch', d.dispatch, o.dispatch),
    attention: section('attention', d.attention, o.attention),
    autotune: o.autotune ?? d.autotune,
  };
}

// ---------------------------------------------------------------------------------------------
// Display (--plan, the adapter line)

const bytes = (b: number): string =>
  b >= 2 ** 30 && b % 2 ** 30 === 0
    ? `${b / 2 ** 30} GiB`
    : b >= 2 ** 20
      ? `${+(b / 2 ** 20).toFixed(1)} MiB`
      : b >= 1024
        ? `${+(b / 1024).toFixed(1)} KiB`
        : `${b} B`;
const count = (n: number): string => (n === Infinity ? '∞' : String(n));

function blockedText(b: BlockedTiling): string {
  return `wg ${b.wgL}x${b.wgU}, ${b.tl}x${b.tu} per invocation, K unroll ${b.ku}${b.vec4 ? ', vec4' : ''}, lanes ${b.lane ?? 'by layout'}`;
}

function tiledText(t: TiledConfig): string {
  return `${t.ty * t.rm}x${t.tx * t.rn} tile, wg ${t.tx}x${t.ty}, ${t.rm}x${t.rn} per invocation, BK ${t.bk}${t.prefetch ? ', prefetch' : ''}${t.unrollK ? ', K unrolled' : ''}`;
}

/** The policy's rows as [name, choice] pairs; a row with a forced entry is marked. */
function rows(p: KernelPolicy): [string, string][] {
  const mark = (name: string) => (p.forced.some((f) => f === name || f.startsWith(`${name}.`)) ? ' (forced)' : '');
  const m = p.matmul;
  const r = p.reduce;
  const a = p.attention;
  const dsp = p.dispatch;
  const l = p.limits;
  return [
    ['family', `${p.family}${mark('family')}`],
    [
      'matmul',
      `${m.kind === 'blocked' ? `register-blocked (${blockedText(m.blocked)})` : `workgroup-tiled (${tiledText(m.tiled)}${m.tuned ? '; tuned per shape class where measured' : ''})`}${mark('matmul')}`,
    ],
    [
      'reduce',
      `serial from ${count(r.serialFromOutputs)} outputs or below ${count(r.treeFromN)} elements per output${r.scalarTree ? ' (a scalar keeps the tree)' : ''}, else a workgroup tree${mark('reduce')}`,
    ],
    ['rmsnorm', `${p.rmsnorm.rows === 'serial' ? 'one invocation per row' : 'one workgroup per row (tree)'}${mark('rmsnorm')}`],
    [
      'dispatch',
      `${dsp.chunkTokens === null ? `2·sqrt(N·k/E) chunks, ${dsp.minChunks}..${dsp.maxChunks}` : `${dsp.chunkTokens} tokens per chunk`}${mark('dispatch')}`,
    ],
    [
      'attention',
      `${a.kernel === 'rows' ? 'one invocation per row' : `tiled, ${a.rows} rows per workgroup, ${a.tile === null ? `tiles up to ${a.maxTile} rows` : `tiles of ${a.tile} rows`}`}; unrolled up to hd ${a.unrollMaxHd}${mark('attention')}`,
    ],
    ['autotune', `${p.autotune ? 'on' : 'off'}${mark('autotune')}`],
    [
      'limits',
      `${l.maxComputeWorkgroupsPerDimension} workgroups per dimension, ${bytes(l.maxStorageBufferBindingSize)} per binding, ${bytes(l.maxBufferSize)} per buffer, ${bytes(l.maxComputeWorkgroupStorageSize)} workgroup memory, ${l.maxComputeInvocationsPerWorkgroup} invocations per workgroup${mark('limits')}`,
    ],
  ];
}

/** The policy as a compact table, one line per kernel family (for --plan). */
export function formatPolicy(p: KernelPolicy): string {
  const table = rows(p);
  const w = Math.max(...table.map(([k]) => k.length));
  return ['kernel policy:', ...table.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}

/** The policy in one line (for the adapter line): "cpu kernels: matmul blocked, reduce serial, ...". */
export function policySummary(p: KernelPolicy): string {
  const forced = p.forced.length ? ` (forced: ${p.forced.join(', ')})` : '';
  return (
    `${p.family} kernels: matmul ${p.matmul.kind}, reduce ${p.reduce.serialFromOutputs === Infinity ? `tree from ${p.reduce.treeFromN}` : `serial below ${p.reduce.treeFromN}`}, ` +
    `rmsnorm ${p.rmsnorm.rows}, dispatch ${p.dispatch.minChunks}..${p.dispatch.maxChunks} chunks, attention ${p.attention.kernel}, autotune ${p.autotune ? 'on' : 'off'}${forced}`
  );
}
