/**
 * Tile configurations of the matmul kernels and the per-device, per-shape choice.
 *
 * Vocabulary (see shaders/matmul-blocked.wgsl): the "lane" dimension of C is spread over the
 * invocations of a workgroup, the "uniform" dimension is blocked per workgroup. With
 * `wgU = 1` the uniform operand's addresses do not depend on the invocation, which on
 * lavapipe turns its loads into scalar loads + broadcasts (cheap) instead of gathers.
 * The defaults below come from the measured variant table in bench/results/matmul-variants.md.
 */

import type { DeviceCaps } from './caps.ts';
import { tiledProblem } from './matmul-tiled.ts';
import { DEFAULT_CONFIG, DEFAULT_TILED, MESA_26_BLOCKED, type KernelPolicy, type MatmulConfig, type PolicyOverride, type TiledConfig } from './policy.ts';

// The tilings and their defaults live in the kernel policy (policy.ts), the one table of device choices.
export { type MatmulConfig, type TiledConfig } from './policy.ts';

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** Named variants of the measured progression (bench/matmul.bench.ts runs them). */
export const VARIANTS: Record<string, Partial<MatmulConfig>> = {
  'v1 naive 1x1, wg 8x8': { wgL: 8, wgU: 8, tl: 1, tu: 1, ku: 1, vec4: false },
  'v2 4x4 register block, wg 8x8': { wgL: 8, wgU: 8, tl: 4, tu: 4, ku: 4, vec4: false },
  'v3 4x4 + vec4 loads': { wgL: 8, wgU: 8, tl: 4, tu: 4, ku: 4, vec4: true },
  'v4 4x4, B block shared by the workgroup (wg 64x1)': { wgL: 64, wgU: 1, tl: 4, tu: 4, ku: 4, vec4: false },
  'v5 2x8, shared B block + vec4': { wgL: 64, wgU: 1, tl: 2, tu: 8, ku: 4, vec4: true },
  'v6 1x16, shared B block': { wgL: 64, wgU: 1, tl: 1, tu: 16, ku: 4, vec4: false },
  'v7 4x4 + vec4, K unroll 8': { wgL: 8, wgU: 8, tl: 4, tu: 4, ku: 8, vec4: true },
  'v8 4x8 + vec4': { wgL: 8, wgU: 8, tl: 4, tu: 8, ku: 4, vec4: true },
  'v9 8x4 + vec4 (default)': { wgL: 8, wgU: 8, tl: 8, tu: 4, ku: 4, vec4: true },
  'v10 6x6 + vec4': { wgL: 8, wgU: 8, tl: 6, tu: 6, ku: 4, vec4: true },
  'v11 8x4 + vec4, wg 16x4': { wgL: 16, wgU: 4, tl: 8, tu: 4, ku: 4, vec4: true },
  'v12 8x8 + vec4': { wgL: 8, wgU: 8, tl: 8, tu: 8, ku: 4, vec4: true },
  'v13 4x8, shared B block + vec4 (wg 64x1)': { wgL: 64, wgU: 1, tl: 4, tu: 8, ku: 4, vec4: true },
  'v14 8x4, shared B block + vec4 (wg 64x1)': { wgL: 64, wgU: 1, tl: 8, tu: 4, ku: 4, vec4: true },
  'v15 2x16, shared B block + vec4 (wg 64x1)': { wgL: 64, wgU: 1, tl: 2, tu: 16, ku: 4, vec4: true },
  'v16 4x8, shared B block + vec4 (wg 16x1)': { wgL: 16, wgU: 1, tl: 4, tu: 8, ku: 4, vec4: true },
  'v17 8x8, shared B block + vec4 (wg 64x1)': { wgL: 64, wgU: 1, tl: 8, tu: 8, ku: 4, vec4: true },
  // The CPU family's default on Mesa lavapipe from 26.0 (policy.ts).
  'v18 4x16, shared B block + vec4 (wg 64x1)': MESA_26_BLOCKED,
};

/**
 * Lane dimension: the one whose divergent loads touch consecutive addresses across lanes
 * (cheaper gathers, fewer cache lines); ties go to 'm'.
 *   A·B   : B[k, n] is contiguous in n            -> lanes over n
 *   A·Bᵀ  : both strided along the lane dim      -> lanes over m
 *   Aᵀ·B  : A[k, m] and B[k, n] both contiguous  -> lanes over m
 */
export function chooseLane(s: MatmulShape): 'm' | 'n' {
  if (!s.transA && !s.transB) return 'n';
  if (s.transA && s.transB) return 'n';
  return 'm';
}

export function chooseMatmulConfig(s: MatmulShape): MatmulConfig {
  const lane = chooseLane(s);
  return { ...DEFAULT_CONFIG, lane };
}

export function resolveConfig(s: MatmulShape, override?: Partial<MatmulConfig>): MatmulConfig {
  const c = { ...chooseMatmulConfig(s), ...(override ?? {}) };
  if (c.wgL * c.wgU > 256) throw new Error(`matmul config: workgroup ${c.wgL}x${c.wgU} exceeds 256 invocations`);
  for (const k of ['wgL', 'wgU', 'tl', 'tu', 'ku'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`matmul config: ${k}=${c[k]} must be a positive integer`);
  }
  if (c.tl * c.tu > 64) throw new Error(`matmul config: register block ${c.tl}x${c.tu} too large`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// The kernel of a problem, as the policy (policy.ts, docs/DESIGN.md §9) says.

/** A kernel with its configuration: the CPU family's register-blocked one or the GPU family's tiled one. */
export type MatmulKernel = { kind: 'blocked'; cfg: MatmulConfig } | { kind: 'tiled'; cfg: TiledConfig };

/** What a test or benchmark may force: a (partial) register-blocked configuration, or a whole tiled one. */
export type MatmulConfigOverride = Partial<MatmulConfig> | TiledConfig;

/** The policy override that forces `c` (for rt.withPolicy / derivePolicy). */
export function forceMatmul(c: MatmulConfigOverride): PolicyOverride {
  return 'kind' in c ? { matmul: { kind: 'tiled', tiled: c } } : { matmul: { kind: 'blocked', blocked: c } };
}

/** A shape with the mode and storage types, as the kernel choice (and the tuning cache) sees it. */
export interface MatmulProblem extends MatmulShape {
  mode: 'plain' | 'segk' | 'grouped';
  types: string;
}

/** The tiled progression the GPU check times (bench/gpu/check.ts) and the autotune tries. */
export const TILED_VARIANTS: Record<string, TiledConfig> = {
  't1 tiled 32x32, 2x2 per invocation, BK 16': { kind: 'tiled', tx: 16, ty: 16, rm: 2, rn: 2, bk: 16, prefetch: false },
  't2 tiled 64x64, 4x4 per invocation, BK 16': { kind: 'tiled', tx: 16, ty: 16, rm: 4, rn: 4, bk: 16, prefetch: false },
  't3 t2 + register prefetch (default)': DEFAULT_TILED,
  't4 tiled 128x128, 8x8 per invocation, BK 8, prefetch': { kind: 'tiled', tx: 16, ty: 16, rm: 8, rn: 8, bk: 8, prefetch: true },
  't5 tiled 64x128, 4x8 per invocation, BK 16, prefetch': { kind: 'tiled', tx: 16, ty: 16, rm: 4, rn: 8, bk: 16, prefetch: true },
  't6 tiled 32x128 (tall N), 4x4, 32x8 invocations, BK 16, prefetch': { kind: 'tiled', tx: 32, ty: 8, rm: 4, rn: 4, bk: 16, prefetch: true },
  't7 t3 with the K tile unrolled by the generator': { ...DEFAULT_TILED, unrollK: true },
};

/** Tuned tiled configurations by adapter and shape class (filled by matmul-tune.ts). */
const tuned = new Map<string, TiledConfig>();

/** Shape class: mode, layout, storage types and the power-of-two bucket of each dimension. */
export function shapeClass(p: MatmulProblem): string {
  const b = (x: number) => Math.ceil(Math.log2(Math.max(1, x)));
  return `${p.mode} ${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'} ${p.types} M${b(p.M)} N${b(p.N)} K${b(p.K)}`;
}

export function adapterKey(caps: DeviceCaps): string {
  const a = caps.adapter;
  return `${a.vendor}|${a.architecture}|${a.device}|${a.description}`;
}

export function setTuned(caps: DeviceCaps, cls: string, cfg: TiledConfig): void {
  tuned.set(`${adapterKey(caps)}#${cls}`, cfg);
}

export function tunedFor(caps: DeviceCaps, p: MatmulProblem): TiledConfig | undefined {
  return tuned.get(`${adapterKey(caps)}#${shapeClass(p)}`);
}

function checkTiled(c: TiledConfig, limits: KernelPolicy['limits']): TiledConfig {
  const why = tiledProblem(c, Math.min(256, limits.maxComputeInvocationsPerWorkgroup), limits.maxComputeWorkgroupStorageSize);
  if (why) throw new Error(`matmul tiled config: ${why}`);
  return c;
}

/** The matmul problems each caps object (one per runtime) has asked for: what the autotune measures. */
const requested = new WeakMap<DeviceCaps, Map<string, MatmulProblem>>();

/** One problem per shape class that `caps`' runtime has chosen a kernel for. */
export function requestedProblems(caps: DeviceCaps): MatmulProblem[] {
  return [...(requested.get(caps)?.values() ?? [])];
}

/**
 * The matmul kernel of a problem on a runtime, as its policy says: the register-blocked kernel with
 * the policy's tiling (no barriers, no workgroup memory: the CPU family's), or the tiled kernel (the
 * GPU family's), tuned per shape class when matmul-tune.ts has measured it and the policy allows.
 */
export function chooseMatmulKernel(rt: { readonly caps: DeviceCaps; readonly policy: KernelPolicy }, p: MatmulProblem): MatmulKernel {
  const caps = rt.caps;
  let seen = requested.get(caps);
  if (!seen) requested.set(caps, (seen = new Map()));
  const cls = shapeClass(p);
  if (!seen.has(cls)) seen.set(cls, { ...p });
  const m = rt.policy.matmul;
  if (m.kind === 'blocked') return { kind: 'blocked', cfg: resolveConfig(p, m.blocked) };
  return { kind: 'tiled', cfg: checkTiled((m.tuned ? tunedFor(caps, p) : undefined) ?? m.tiled, rt.policy.limits) };
}
