/**
 * Target profiles for planning: the device caps a plan runs the meta runtime with (memory, Dawn's
 * per-binding and buffer-size limits, f16, subgroups, kernel family). `this` is the open adapter.
 *
 * Limits are what Dawn (as built into npm `webgpu`) reports for the card on Vulkan: the driver's
 * VkPhysicalDeviceLimits, with Dawn's own caps applied — on NVIDIA 2 GiB - 4 per storage binding
 * (an OpArrayLength bug at 2 GiB), at most 16 storage buffers per stage. Node's Dawn does not
 * round them down to Chrome's tiers. Each value's source: docs/IMPLEMENTATIONS.md ("Target
 * profiles"). Peak FLOP/s and bandwidth are the vendors' published figures (docs/DESIGN.md §4),
 * used only to state step-time estimates as assumptions.
 */
import { totalmem } from 'node:os';
import { z } from 'zod';
import type { DeviceCaps, DeviceLimits } from '../../kernels/caps.ts';

export const GIB = 1024 ** 3;

export interface TargetProfile {
  name: string;
  description: string;
  /** Device memory the plan is checked against (before the reserve). */
  memoryBytes: number;
  caps: DeviceCaps;
  /**
   * Published peaks (dense): f32 FMA FLOP/s (CUDA cores), f16 tensor-core FLOP/s with f32
   * accumulation, memory bytes/s, and the document they come from. The step-time estimate uses
   * f32 only (src/train/plan/step-time.ts says why).
   */
  peak: { f32: number; f16: number; bandwidth: number; source: string } | null;
}

export const TARGET_NAMES = ['rtx-3090', 'rtx-4090', 'a100-40', 'a100-80', 'h100-80', 'h200', 'lavapipe', 'this'] as const;
export const TargetNameSchema = z.enum(TARGET_NAMES);
export type TargetName = (typeof TARGET_NAMES)[number];

/** Limits Dawn gives an NVIDIA card on Vulkan (the source of each value: docs/IMPLEMENTATIONS.md). */
const NVIDIA_LIMITS: DeviceLimits = {
  // min(maxBufferSize, 2 GiB - 4): Dawn's NVIDIA cap, whatever maxStorageBufferRange says.
  maxStorageBufferBindingSize: 2 * GIB - 4,
  // The driver's VkPhysicalDeviceMaintenance4Properties::maxBufferSize is at least this; every
  // tensor is bound whole as storage, so the per-binding limit above is the one that binds.
  maxBufferSize: 4 * GIB,
  // min(maxPerStageDescriptorStorageBuffers, Dawn's kMaxStorageBuffersPerShaderStage = 16).
  maxStorageBuffersPerShaderStage: 16,
  // maxComputeSharedMemorySize: 48 KiB on NVIDIA's Vulkan driver.
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 65536,
};

/** What lavapipe (Mesa 25.0 and 26.1) reports; test/planner/targets.test.ts checks it against the open adapter. */
export const LAVAPIPE_LIMITS: DeviceLimits = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxBufferSize: 4294967295,
  maxStorageBuffersPerShaderStage: 16,
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupSizeZ: 1024,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 65536,
};

function gpuCaps(name: string, architecture: string, subgroupMatrix: boolean): DeviceCaps {
  return {
    adapter: { vendor: 'nvidia', architecture, device: name, description: `${name} (target profile)`, backend: 'vulkan' },
    cpuAdapter: false,
    family: 'gpu',
    familyForced: false,
    f16: true,
    timestampQuery: true,
    subgroups: { minSize: 32, maxSize: 32 },
    // 16x16x16 f16 with f32 accumulation is what Dawn reports on RTX 30/40 and datacenter cards.
    subgroupMatrix: subgroupMatrix ? [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }] : [],
    limits: NVIDIA_LIMITS,
    limitsProfile: 'adapter',
    meta: true,
  };
}

const TFLOPS = 1e12;

function nvidia(name: string, description: string, memoryGiB: number, architecture: string, peak: TargetProfile['peak']): TargetProfile {
  return { name, description, memoryBytes: memoryGiB * GIB, caps: gpuCaps(name, architecture, true), peak };
}

/** The named profiles (all but `this`, which needs an open device). */
export function namedTarget(name: Exclude<TargetName, 'this'>): TargetProfile {
  switch (name) {
    case 'rtx-3090':
      return nvidia(name, 'NVIDIA GeForce RTX 3090, 24 GB', 24, 'ampere', {
        f32: 35.6 * TFLOPS,
        f16: 71 * TFLOPS,
        bandwidth: 936e9,
        source: 'NVIDIA Ampere GA102 architecture whitepaper',
      });
    case 'rtx-4090':
      return nvidia(name, 'NVIDIA GeForce RTX 4090, 24 GB', 24, 'ada-lovelace', {
        f32: 82.6 * TFLOPS,
        f16: 165.2 * TFLOPS,
        bandwidth: 1008e9,
        source: 'NVIDIA Ada Lovelace architecture whitepaper',
      });
    case 'a100-40':
      return nvidia(name, 'NVIDIA A100 40 GB', 40, 'ampere', { f32: 19.5 * TFLOPS, f16: 312 * TFLOPS, bandwidth: 1555e9, source: 'NVIDIA A100 datasheet' });
    case 'a100-80':
      return nvidia(name, 'NVIDIA A100 80 GB', 80, 'ampere', { f32: 19.5 * TFLOPS, f16: 312 * TFLOPS, bandwidth: 2039e9, source: 'NVIDIA A100 datasheet' });
    case 'h100-80':
      return nvidia(name, 'NVIDIA H100 SXM 80 GB', 80, 'hopper', {
        f32: 67 * TFLOPS,
        f16: 989 * TFLOPS,
        bandwidth: 3350e9,
        source: 'NVIDIA H100 SXM datasheet',
      });
    case 'h200':
      return nvidia(name, 'NVIDIA H200 141 GB', 141, 'hopper', { f32: 67 * TFLOPS, f16: 989 * TFLOPS, bandwidth: 4800e9, source: 'NVIDIA H200 SXM datasheet' });
    case 'lavapipe':
      return {
        name,
        description: `Mesa lavapipe (CPU Vulkan): this host's ${(totalmem() / GIB).toFixed(0)} GiB of RAM`,
        memoryBytes: totalmem(),
        caps: {
          adapter: { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'lavapipe (target profile)', backend: 'vulkan (CPU)' },
          cpuAdapter: true,
          family: 'cpu',
          familyForced: false,
          f16: true,
          timestampQuery: true,
          subgroups: { minSize: 8, maxSize: 8 },
          subgroupMatrix: [],
          limits: LAVAPIPE_LIMITS,
          limitsProfile: 'adapter',
          meta: true,
        },
        peak: null,
      };
  }
}

/**
 * `this`: the open device's own caps. WebGPU does not tell how much memory a GPU has, so the
 * memory is the host's RAM on a CPU adapter and 24 GiB (the card this engine is sized for) on a
 * GPU unless --budget-gb says otherwise.
 */
export function thisTarget(caps: DeviceCaps): TargetProfile {
  const a = caps.adapter;
  return {
    name: 'this',
    description: `this adapter: ${a.vendor} ${a.device || a.description} (${a.backend})`,
    memoryBytes: caps.cpuAdapter ? totalmem() : 24 * GIB,
    caps: { ...caps, meta: true },
    peak: null,
  };
}
