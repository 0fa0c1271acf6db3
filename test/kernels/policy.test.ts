/**
 * The kernel policy (src/kernels/policy.ts): one table of device choices derived from DeviceCaps.
 * Its family defaults are the choices the wrappers made on their own before the table (written out
 * here as the old rules, so "same kernels chosen" is checked, not assumed); one override mechanism
 * forces anything; both runtimes derive the same table from the same caps; the limits the wrappers
 * read come from it.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { MetaRuntime } from '../../src/kernels/meta-runtime.ts';
import { LIMIT_NAMES, WEBGPU_DEFAULT_LIMITS, chooseFamily, chooseLimits, type DeviceCaps, type KernelFamily } from '../../src/kernels/caps.ts';
import { DEFAULT_CONFIG, DEFAULT_TILED, derivePolicy, formatPolicy, mergeOverrides, policySummary } from '../../src/kernels/policy.ts';
import { MESA_26_BLOCKED, lavapipeMesaVersion } from '../../src/kernels/policy.ts';
import { serialReduction } from '../../src/kernels/reduce.ts';
import { chooseChunkTokens } from '../../src/kernels/dispatch.ts';
import { chooseMatmulKernel, forceMatmul, type MatmulProblem } from '../../src/kernels/matmul-config.ts';
import { unary } from '../../src/kernels/elementwise.ts';
import { grid1d } from '../../src/kernels/grid.ts';
import { thisTarget } from '../../src/train/plan/targets.ts';
import { testRuntime } from '../reference/gpu.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

/** Mesa 25.0's lavapipe, whatever this machine runs: the family defaults below are its choices (the driver's own are tested apart). */
const MESA_25 = 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)';
const caps = (family: KernelFamily, cpuAdapter = true, description = MESA_25): DeviceCaps => ({
  ...rt.caps,
  adapter: { ...rt.caps.adapter, description },
  family,
  familyForced: false,
  cpuAdapter,
});

/** The rules each wrapper applied itself before the table (reduce.ts, dispatch.ts, rmsnorm.ts, attention.ts, run.ts's autotune gate). */
const OLD = {
  serial: (family: KernelFamily, outputs: number, n: number) => (family === 'cpu' ? outputs >= 4096 || (n < 1 << 16 && outputs > 1) : n < 256),
  chunks: (family: KernelFamily): [number, number] => (family === 'cpu' ? [16, 256] : [64, 1024]),
  rmsnormSerial: (family: KernelFamily) => family === 'cpu',
  attention: (family: KernelFamily) => (family === 'gpu' ? 'tiled' : 'rows'),
  autotune: (c: DeviceCaps) => c.family === 'gpu' && !c.cpuAdapter,
};

describe('kernel policy', () => {
  it('picks the register-blocked tiling per driver: Mesa lavapipe from 26.0 the shared-block one it measured fastest, every other driver the default', () => {
    expect(lavapipeMesaVersion('llvmpipe: Mesa 26.1.6-1~bpo13+1 (LLVM 19.1.7)')).toEqual({ major: 26, minor: 1 });
    expect(lavapipeMesaVersion(MESA_25)).toEqual({ major: 25, minor: 0 });
    expect(lavapipeMesaVersion('SwiftShader driver 5.0.0')).toBeNull();
    expect(lavapipeMesaVersion('NVIDIA 570.86.16')).toBeNull();
    const { lane: _, ...blockedDefault } = DEFAULT_CONFIG;
    expect(derivePolicy(caps('cpu', true, 'llvmpipe: Mesa 26.1.6-1~bpo13+1 (LLVM 19.1.7)')).matmul.blocked).toEqual(MESA_26_BLOCKED);
    expect(derivePolicy(caps('cpu', true, MESA_25)).matmul.blocked).toEqual(blockedDefault);
    expect(derivePolicy(caps('cpu', true, 'SwiftShader driver 5.0.0')).matmul.blocked).toEqual(blockedDefault);
    // The choice is the policy's: forcing a tiling still wins.
    const forced = derivePolicy(caps('cpu', true, 'llvmpipe: Mesa 26.1.6-1~bpo13+1 (LLVM 19.1.7)'), forceMatmul({ tl: 8, tu: 4 }));
    expect(forced.matmul.blocked).toMatchObject({ tl: 8, tu: 4 });
  });

  it('the family defaults are the choices the wrappers made before the table', () => {
    for (const family of ['cpu', 'gpu'] as const) {
      const p = derivePolicy(caps(family));
      expect(p.family).toBe(family);
      expect(p.forced).toEqual([]);
      for (const outputs of [0, 1, 2, 7, 4095, 4096, 70_000])
        for (const n of [0, 1, 255, 256, 257, 65_535, 65_536, 1 << 20])
          expect(serialReduction(p, outputs, n), `${family} outputs=${outputs} n=${n}`).toBe(OLD.serial(family, outputs, n));
      expect([p.dispatch.minChunks, p.dispatch.maxChunks]).toEqual(OLD.chunks(family));
      expect(p.dispatch.chunkTokens).toBeNull();
      expect(p.rmsnorm.rows === 'serial').toBe(OLD.rmsnormSerial(family));
      expect(p.attention).toEqual({ kernel: OLD.attention(family), rows: 32, tile: null, maxTile: 32, unrollMaxHd: 64 });
      expect(p.limits).toEqual(rt.caps.limits);
      for (const cpuAdapter of [true, false]) expect(derivePolicy(caps(family, cpuAdapter)).autotune).toBe(OLD.autotune(caps(family, cpuAdapter)));
    }
  });

  it('chooses the matmul kernel of the family: the default register block (lane by layout) or the default tile', () => {
    const p: MatmulProblem = { M: 40, N: 24, K: 16, transA: false, transB: false, mode: 'plain', types: 'f32,f32,f32' };
    const cpu = caps('cpu');
    expect(chooseMatmulKernel({ caps: cpu, policy: derivePolicy(cpu) }, p)).toEqual({ kind: 'blocked', cfg: { ...DEFAULT_CONFIG, lane: 'n' } });
    expect(chooseMatmulKernel({ caps: cpu, policy: derivePolicy(cpu) }, { ...p, transB: true })).toEqual({
      kind: 'blocked',
      cfg: { ...DEFAULT_CONFIG, lane: 'm' },
    });
    const gpu = caps('gpu');
    expect(chooseMatmulKernel({ caps: gpu, policy: derivePolicy(gpu) }, { ...p, K: 1 << 20 })).toEqual({ kind: 'tiled', cfg: DEFAULT_TILED });
  });

  it('one override mechanism: sections merge into the defaults, a forced tiling forces its kernel, limits only go down', () => {
    const c = caps('cpu');
    const tiled = { kind: 'tiled' as const, tx: 8, ty: 8, rm: 2, rn: 2, bk: 8, prefetch: false };
    const p = derivePolicy(c, {
      ...forceMatmul(tiled),
      attention: { tile: 4 },
      limits: { maxComputeWorkgroupsPerDimension: 7, maxBufferSize: Number.MAX_SAFE_INTEGER },
    });
    expect(p.matmul).toEqual({ kind: 'tiled', blocked: derivePolicy(c).matmul.blocked, tiled, tuned: false });
    expect(p.attention).toEqual({ ...derivePolicy(c).attention, tile: 4 });
    expect(p.limits.maxComputeWorkgroupsPerDimension).toBe(7);
    expect(p.limits.maxBufferSize).toBe(c.limits.maxBufferSize); // not raised past the device
    expect(p.forced).toEqual(
      expect.arrayContaining(['matmul.kind', 'matmul.tiled', 'matmul.tuned', 'attention.tile', 'limits.maxComputeWorkgroupsPerDimension']),
    );
    const blocked = derivePolicy(caps('gpu'), forceMatmul({ tl: 2, tu: 2 }));
    expect(blocked.matmul.kind).toBe('blocked');
    expect(blocked.matmul.blocked).toEqual({ ...derivePolicy(c).matmul.blocked, tl: 2, tu: 2 });
    // A forced family re-derives every row from that family's defaults.
    expect(derivePolicy(c, { family: 'gpu' })).toMatchObject({ family: 'gpu', forced: ['family'], rmsnorm: { rows: 'parallel' }, matmul: { kind: 'tiled' } });
    // Later overrides win, field by field.
    expect(mergeOverrides({ attention: { tile: 4, rows: 8 } }, { attention: { tile: 2 } })).toEqual({ attention: { tile: 2, rows: 8 } });
  });

  it('the WEBGPU_MOE_KERNELS / device.kernels family force feeds the same derivation', () => {
    const forced = chooseFamily(true, 'auto', 'gpu');
    expect(forced).toEqual({ family: 'gpu', forced: true });
    const p = derivePolicy({ ...caps('cpu'), family: forced.family, familyForced: forced.forced });
    expect(p).toEqual({ ...derivePolicy(caps('cpu'), { family: 'gpu' }), forced: ['family'] });
    expect(chooseFamily(true, 'cpu', 'gpu')).toEqual({ family: 'cpu', forced: true }); // the config wins over the variable
  });

  it("WEBGPU_MOE_LIMITS=default opens the device with exactly WebGPU's default limits; otherwise every limit is at least the default", () => {
    // The default-limits CI lane (npm run test:default-limits) runs this file with the variable set.
    expect(rt.caps.limitsProfile).toBe(chooseLimits(undefined, process.env.WEBGPU_MOE_LIMITS));
    if (rt.caps.limitsProfile === 'default') expect(rt.caps.limits).toEqual(WEBGPU_DEFAULT_LIMITS);
    else for (const k of LIMIT_NAMES) expect(rt.caps.limits[k], k).toBeGreaterThanOrEqual(WEBGPU_DEFAULT_LIMITS[k]);
    expect(rt.policy.limits).toEqual(rt.caps.limits);
    expect(chooseLimits(undefined, 'default')).toBe('default');
    expect(chooseLimits(undefined, '')).toBe('adapter');
    expect(chooseLimits('adapter', 'default')).toBe('adapter'); // an explicit choice wins over the variable
    expect(() => chooseLimits(undefined, 'small')).toThrow(/WEBGPU_MOE_LIMITS="small": expected adapter or default/);
  });

  it('a software adapter (lavapipe, SwiftShader) gets the CPU family unless one is forced', () => {
    // Both report isFallbackAdapter; the name is the second witness (device.ts isCpuAdapter).
    if (/llvmpipe|lavapipe|swiftshader/i.test(`${rt.caps.adapter.device} ${rt.caps.adapter.description}`)) expect(rt.caps.cpuAdapter).toBe(true);
    expect({ family: rt.caps.family, forced: rt.caps.familyForced }).toEqual(chooseFamily(rt.caps.cpuAdapter, 'auto', process.env.WEBGPU_MOE_KERNELS));
    expect(chooseFamily(true, 'auto', '')).toEqual({ family: 'cpu', forced: false });
    expect(rt.caps.adapter.backend).toBe(rt.caps.cpuAdapter ? 'vulkan (CPU)' : 'vulkan');
  });

  it('the Dawn runtime and the meta runtime derive the same policy from the same caps', () => {
    expect(rt.policy).toEqual(derivePolicy(rt.caps));
    expect(new MetaRuntime(thisTarget(rt.caps).caps).policy).toEqual(rt.policy);
    const other: KernelFamily = rt.policy.family === 'cpu' ? 'gpu' : 'cpu';
    expect(new MetaRuntime(rt.caps, { family: other }).policy).toEqual(derivePolicy(rt.caps, { family: other }));
  });

  it('withPolicy applies an override to the work recorded inside it, nests, and restores the policy (also on a throw)', () => {
    const before = rt.policy;
    rt.withPolicy({ rmsnorm: { rows: 'parallel' } }, () => {
      expect(rt.policy.rmsnorm.rows).toBe('parallel');
      rt.withPolicy({ attention: { kernel: 'tiled' } }, () => {
        expect(rt.policy.rmsnorm.rows).toBe('parallel');
        expect(rt.policy.attention.kernel).toBe('tiled');
      });
      expect(rt.policy.attention.kernel).toBe(before.attention.kernel);
    });
    expect(() =>
      rt.withPolicy({ dispatch: { chunkTokens: 3 } }, () => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(rt.policy).toBe(before);
    expect(rt.withPolicy({ dispatch: { chunkTokens: 3 } }, () => chooseChunkTokens(rt.policy, 1000, 8, 2))).toBe(chooseChunkTokens(before, 1000, 8, 2));
  });

  it("grids fold at the policy's workgroup limit, and the kernel still covers every element", async () => {
    expect(grid1d(rt, 70_000)).toEqual([rt.caps.limits.maxComputeWorkgroupsPerDimension, Math.ceil(70_000 / rt.caps.limits.maxComputeWorkgroupsPerDimension)]);
    const n = 20 * 256 + 5; // 21 workgroups: [7, 3] at a limit of 7
    const t = rt.zeros([n]);
    const y = rt.withPolicy({ limits: { maxComputeWorkgroupsPerDimension: 7 } }, () => {
      expect(grid1d(rt, 21)).toEqual([7, 3]);
      return unary('addScalar', t, 2.5);
    });
    const d = await y.readF32();
    expect(d.every((v) => v === 2.5)).toBe(true);
    t.dispose();
    y.dispose();
  });

  it('formats as a table (for --plan) and as one line (for the adapter line)', () => {
    const p = derivePolicy(caps('cpu'), { attention: { kernel: 'tiled' } });
    const table = formatPolicy(p);
    expect(table.split('\n')[0]).toBe('kernel policy:');
    for (const row of ['family', 'matmul', 'reduce', 'rmsnorm', 'dispatch', 'attention', 'autotune', 'limits'])
      expect(table).toMatch(new RegExp(`^  ${row} +\\S`, 'm'));
    expect(table).toMatch(/attention +tiled, 32 rows per workgroup.*\(forced\)/);
    expect(table).toMatch(/matmul +register-blocked \(wg 8x8, 8x4 per invocation/);
    const line = policySummary(p);
    expect(line).not.toContain('\n');
    expect(line).toMatch(/^cpu kernels: matmul blocked, .*attention tiled.*\(forced: attention\.kernel\)$/);
  });
});
