/**
 * What a device can do, read once when it opens (or taken from a target profile by the meta
 * runtime), and the kernel family: the CPU-adapter family or the GPU family, the adapter's own
 * unless WEBGPU_MOE_KERNELS or the config's `device.kernels` forces one. Every device-dependent
 * kernel choice is derived from these caps in one table, the kernel policy (policy.ts): wrappers
 * read `rt.policy`, not the family; nothing outside src/kernels looks at adapter strings.
 *
 * Why two families: on a CPU adapter (Mesa lavapipe) a workgroup runs as SIMD lanes of one CPU
 * thread, a barrier costs ~10 us and storage loads are scalarised, so barrier-free kernels that walk
 * chunks serially win there; on a GPU those are the wrong choices (docs/DESIGN.md §9).
 */
import { z } from 'zod';

export type KernelFamily = 'cpu' | 'gpu';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** 'vulkan (CPU)' for a software adapter, 'vulkan' otherwise, 'meta' for the meta runtime. */
  backend: string;
}

/** The limits the engine requests as large as the adapter allows (and plans against). */
export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupSizeZ: number;
  maxComputeWorkgroupsPerDimension: number;
  maxUniformBufferBindingSize: number;
}

/**
 * WebGPU's default limits: what every adapter guarantees, and what a device gets for a limit it
 * does not request (the spec's limits table; Dawn's lowest core tier, docs/IMPLEMENTATIONS.md).
 * `WEBGPU_MOE_LIMITS=default` opens the device with exactly these, to prove no kernel needs more.
 */
export const WEBGPU_DEFAULT_LIMITS: Readonly<DeviceLimits> = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxBufferSize: 256 * 1024 * 1024,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 65536,
};

export const LIMIT_NAMES: readonly (keyof DeviceLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
];

/** One tensor-core shape Dawn reports (adapter.info.subgroupMatrixConfigs). */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface DeviceCaps {
  adapter: AdapterSummary;
  /** A software (CPU) adapter such as lavapipe or SwiftShader. */
  cpuAdapter: boolean;
  /** The kernel family the policy's defaults follow (see chooseFamily and policy.ts derivePolicy). */
  family: KernelFamily;
  /** Set when `family` was forced by WEBGPU_MOE_KERNELS or the config, not taken from the adapter. */
  familyForced: boolean;
  f16: boolean;
  timestampQuery: boolean;
  /** Subgroup sizes when the device has the 'subgroups' feature. */
  subgroups: { minSize: number; maxSize: number } | null;
  /** Tensor-core configurations, non-empty only when the device enabled the subgroup-matrix feature. */
  subgroupMatrix: readonly SubgroupMatrixConfig[];
  limits: DeviceLimits;
  /** Where `limits` came from: the adapter's maxima, or WebGPU's defaults (WEBGPU_MOE_LIMITS=default). */
  limitsProfile: LimitsProfile;
  /** The meta runtime: shapes and bytes only, nothing runs. */
  meta: boolean;
}

export const KERNELS_ENV = 'WEBGPU_MOE_KERNELS';

export const KernelFamilyChoiceSchema = z.enum(['auto', 'cpu', 'gpu']);
export type KernelFamilyChoice = z.infer<typeof KernelFamilyChoiceSchema>;

/**
 * The kernel family: the adapter's own (CPU family on a CPU adapter) unless `choice` or `env`, the
 * WEBGPU_MOE_KERNELS environment variable's value, forces one. The explicit choice wins over the
 * variable. The core reads no environment: Node's device acquisition passes it in
 * (src/kernels/node/dawn.ts); a browser has none.
 */
export function chooseFamily(cpuAdapter: boolean, choice: KernelFamilyChoice = 'auto', env?: string): { family: KernelFamily; forced: boolean } {
  let pick = choice;
  if (pick === 'auto' && env !== undefined && env !== '') {
    const r = KernelFamilyChoiceSchema.safeParse(env);
    if (!r.success) throw new Error(`${KERNELS_ENV}=${JSON.stringify(env)}: expected auto, cpu or gpu (unset it to use the adapter's own kernel family)`);
    pick = r.data;
  }
  if (pick === 'auto') return { family: cpuAdapter ? 'cpu' : 'gpu', forced: false };
  return { family: pick, forced: true };
}

export const LIMITS_ENV = 'WEBGPU_MOE_LIMITS';

export const LimitsProfileSchema = z.enum(['adapter', 'default']);
export type LimitsProfile = z.infer<typeof LimitsProfileSchema>;

/**
 * The limits a device is opened with: the adapter's maxima (the default), or WebGPU's defaults
 * when `choice` or the WEBGPU_MOE_LIMITS environment variable says `default`. The explicit choice
 * wins over the variable. Read by kernels/device.ts only.
 */
export function chooseLimits(choice: LimitsProfile | undefined, env?: string): LimitsProfile {
  if (choice) return choice;
  if (env === undefined || env === '') return 'adapter';
  const r = LimitsProfileSchema.safeParse(env);
  if (!r.success) throw new Error(`${LIMITS_ENV}=${JSON.stringify(env)}: expected adapter or default (unset it to use the adapter's own limits)`);
  return r.data;
}

/** One line for logs: "gpu kernels (forced)", "cpu kernels". */
export function describeFamily(c: DeviceCaps): string {
  return `${c.family} kernels${c.familyForced ? ' (forced)' : ''}`;
}
