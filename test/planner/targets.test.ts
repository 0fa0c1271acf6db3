/**
 * The planner's target profiles (src/train/plan/targets.ts) against what the adapters report:
 * the lavapipe profile is the open lavapipe device's own limits (Mesa 25.0 here, Mesa 26.1 in the
 * trixie lane), and every profile is a device WebGPU allows (no limit below WebGPU's defaults, a
 * binding no larger than a buffer). The NVIDIA values' sources are in docs/IMPLEMENTATIONS.md.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { LIMIT_NAMES, WEBGPU_DEFAULT_LIMITS } from '../../src/kernels/caps.ts';
import { LAVAPIPE_LIMITS, TARGET_NAMES, namedTarget, thisTarget, GIB } from '../../src/train/plan/targets.ts';
import { testRuntime } from '../reference/gpu.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const named = TARGET_NAMES.filter((n) => n !== 'this').map((n) => namedTarget(n as Exclude<typeof n, 'this'>));

describe('target profiles', () => {
  it('the lavapipe profile is what the open lavapipe device reports', (ctx) => {
    const a = rt.caps.adapter;
    if (!/llvmpipe/.test(a.device)) ctx.skip(`the open adapter is ${a.device || a.description}, not lavapipe`);
    if (rt.caps.limitsProfile !== 'adapter') ctx.skip(`the device was opened with WebGPU's default limits (WEBGPU_MOE_LIMITS=${rt.caps.limitsProfile})`);
    expect(rt.caps.limits).toEqual(LAVAPIPE_LIMITS);
    const lp = namedTarget('lavapipe').caps;
    expect([lp.f16, lp.subgroups, lp.cpuAdapter, lp.family]).toEqual([rt.caps.f16, rt.caps.subgroups, true, 'cpu']);
  });

  it('every profile is a device WebGPU allows: no limit below the defaults, a binding no larger than a buffer', () => {
    for (const t of [...named, thisTarget(rt.caps)]) {
      for (const k of LIMIT_NAMES) expect(t.caps.limits[k], `${t.name} ${k}`).toBeGreaterThanOrEqual(WEBGPU_DEFAULT_LIMITS[k]);
      expect(t.caps.limits.maxStorageBufferBindingSize, t.name).toBeLessThanOrEqual(t.caps.limits.maxBufferSize);
      expect(t.caps.limits.maxComputeInvocationsPerWorkgroup, t.name).toBeGreaterThanOrEqual(t.caps.limits.maxComputeWorkgroupSizeZ);
    }
  });

  it('NVIDIA profiles carry Dawn-on-Vulkan NVIDIA limits: 2 GiB - 4 per binding, 48 KiB workgroup memory, 16 storage buffers', () => {
    for (const t of named.filter((t) => t.caps.adapter.vendor === 'nvidia')) {
      expect(t.caps.limits.maxStorageBufferBindingSize, t.name).toBe(2 * GIB - 4);
      expect(t.caps.limits.maxComputeWorkgroupStorageSize, t.name).toBe(48 * 1024);
      expect(t.caps.limits.maxStorageBuffersPerShaderStage, t.name).toBe(16);
      expect([t.caps.f16, t.caps.subgroups, t.caps.family, t.caps.limitsProfile], t.name).toEqual([true, { minSize: 32, maxSize: 32 }, 'gpu', 'adapter']);
    }
  });
});
