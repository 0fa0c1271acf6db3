/**
 * Device acquisition through Dawn (npm `webgpu`), and the device's capabilities (caps.ts), read
 * once here. One process-wide device: Dawn's GPU instance must stay referenced for the life of
 * the process, or V8 may collect it and Dawn segfaults later inside ProcessEvents
 * (docs/DESIGN.md §3).
 */
import { create, globals } from 'webgpu';
import { GpuError, NO_ADAPTER_HELP } from './errors.ts';
import {
  LIMIT_NAMES,
  WEBGPU_DEFAULT_LIMITS,
  chooseFamily,
  chooseLimits,
  type AdapterSummary,
  type DeviceCaps,
  type DeviceLimits,
  type KernelFamilyChoice,
  type LimitsProfile,
  type SubgroupMatrixConfig,
} from './caps.ts';
import { derivePolicy, policySummary } from './policy.ts';

export interface GpuDevice {
  device: GPUDevice;
  caps: DeviceCaps;
  /** Set when the device is lost; every later operation throws it. */
  lost: GpuError | null;
}

export interface AcquireOptions {
  /** Extra Dawn toggles, e.g. 'disable-dawn-features=timestamp_quantization'. */
  dawnFlags?: string[];
  /** Print the adapter line once (default true). */
  announce?: boolean;
  /**
   * Unquantized timestamp queries, for the profiler: Dawn otherwise rounds them to 65.5 us.
   * Takes effect only if this is the process's first acquisition (the Dawn instance is shared).
   */
  preciseTimestamps?: boolean;
  /** Kernel family: 'auto' (the adapter's own; WEBGPU_MOE_KERNELS may force one), 'cpu' or 'gpu'. */
  kernels?: KernelFamilyChoice;
  /**
   * 'adapter' (the adapter's maxima), or 'default': WebGPU's default limits, the minimum every
   * adapter guarantees (caps.ts WEBGPU_DEFAULT_LIMITS). Unset: WEBGPU_MOE_LIMITS, else 'adapter'.
   */
  limits?: LimitsProfile;
}

/** Dawn's feature name for tensor-core matmuls (VK_KHR_cooperative_matrix on Vulkan). */
export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** The Dawn toggle behind AcquireOptions.preciseTimestamps. */
export const PRECISE_TIMESTAMPS_FLAG = 'disable-dawn-features=timestamp_quantization';

// Limits the engine wants as large as the adapter allows: big activations and weights
// live in single storage bindings, and kernels bind many buffers.
const WANTED_LIMITS: readonly string[] = [...LIMIT_NAMES, 'maxBindGroups'];

let dawn: GPU | null = null;
let dawnFlags: readonly string[] = [];

/** True when the process's Dawn instance was created with unquantized timestamps. */
export function timestampsPrecise(): boolean {
  return dawnFlags.includes(PRECISE_TIMESTAMPS_FLAG);
}
let current: Promise<GpuDevice> | null = null;

function gpuInstance(flags: string[]): GPU {
  if (!dawn) {
    Object.assign(globalThis, globals);
    dawn = create(flags);
    dawnFlags = [...flags];
    // Keep the instance reachable from a global root as well (see header comment).
    (globalThis as { __webgpuMoeDawn?: GPU }).__webgpuMoeDawn = dawn;
  }
  return dawn;
}

/** Dawn's adapter info, with the fields only Dawn reports (subgroup sizes, matrix configs). */
type DawnAdapterInfo = GPUAdapterInfo & {
  isFallbackAdapter?: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  subgroupMatrixConfigs?: readonly SubgroupMatrixConfig[];
};

/** A software (CPU) adapter: Dawn's fallback flag, or a known software rasteriser's name. */
function isCpuAdapter(info: DawnAdapterInfo | undefined): boolean {
  return !!info?.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(`${info?.device} ${info?.description}`);
}

function summarize(info: DawnAdapterInfo | undefined): AdapterSummary {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    backend: isCpuAdapter(info) ? 'vulkan (CPU)' : 'vulkan',
  };
}

/** The caps of an opened device: what it enabled, not what the adapter could. */
export function readCaps(
  device: GPUDevice,
  info: DawnAdapterInfo | undefined,
  kernels: KernelFamilyChoice = 'auto',
  limitsProfile: LimitsProfile = 'adapter',
): DeviceCaps {
  const cpuAdapter = isCpuAdapter(info);
  const { family, forced } = chooseFamily(cpuAdapter, kernels);
  const limits = Object.fromEntries(LIMIT_NAMES.map((n) => [n, (device.limits as unknown as Record<string, number>)[n] ?? 0])) as unknown as DeviceLimits;
  const subgroups = device.features.has('subgroups') ? { minSize: info?.subgroupMinSize ?? 0, maxSize: info?.subgroupMaxSize ?? 0 } : null;
  return {
    adapter: summarize(info),
    cpuAdapter,
    family,
    familyForced: forced,
    f16: device.features.has('shader-f16'),
    timestampQuery: device.features.has('timestamp-query'),
    subgroups,
    subgroupMatrix: device.features.has(SUBGROUP_MATRIX_FEATURE as GPUFeatureName) ? [...(info?.subgroupMatrixConfigs ?? [])] : [],
    limits,
    limitsProfile,
    meta: false,
  };
}

/** Request the adapter and device once; later calls return the same device. */
export function acquireDevice(options: AcquireOptions = {}): Promise<GpuDevice> {
  if (!current) {
    current = open(options).catch((e) => {
      current = null;
      throw e;
    });
  }
  return current;
}

/** Extra Dawn toggles from the environment, comma-separated (e.g. enable-dawn-features=allow_unsafe_apis for experimental features). */
export const DAWN_FLAGS_ENV = 'WEBGPU_MOE_DAWN_FLAGS';

async function open(options: AcquireOptions): Promise<GpuDevice> {
  const flags = [...(options.dawnFlags ?? []), ...(process.env[DAWN_FLAGS_ENV] ?? '').split(',').filter(Boolean)];
  if (options.preciseTimestamps && !flags.includes(PRECISE_TIMESTAMPS_FLAG)) flags.push(PRECISE_TIMESTAMPS_FLAG);
  const gpu = gpuInstance(flags);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuError(NO_ADAPTER_HELP, 'adapter', 'no-adapter');

  // The one place WEBGPU_MOE_LIMITS is read (through chooseLimits), like WEBGPU_MOE_KERNELS.
  const limitsProfile = chooseLimits(options.limits);
  const requiredLimits: Record<string, number> = {};
  if (limitsProfile === 'default') {
    // Asked for explicitly (a device gets these for any limit it does not request): every kernel
    // must then fit WebGPU's guaranteed minimum, as on the smallest adapter anyone may have.
    Object.assign(requiredLimits, WEBGPU_DEFAULT_LIMITS);
  } else {
    for (const name of WANTED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[name];
      if (typeof v === 'number') requiredLimits[name] = v;
    }
  }
  const requiredFeatures: GPUFeatureName[] = [];
  for (const f of ['shader-f16', 'timestamp-query', 'subgroups', SUBGROUP_MATRIX_FEATURE] as GPUFeatureName[]) {
    if (adapter.features.has(f)) requiredFeatures.push(f);
  }
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'webgpu-moe' });
  const caps = readCaps(device, adapter.info as DawnAdapterInfo, options.kernels, limitsProfile);
  const summary = caps.adapter;
  const gd: GpuDevice = { device, caps, lost: null };
  void device.lost.then((info) => {
    gd.lost = new GpuError(`WebGPU device lost (${info.reason}): ${info.message}`, 'device', 'device-lost');
    if (info.reason !== 'destroyed') console.error(`[webgpu-moe] ${gd.lost.message}`);
  });
  if (options.announce ?? true) {
    console.error(
      `[webgpu-moe] adapter: ${summary.vendor} ${summary.device || summary.description} ` +
        `(${summary.architecture || '?'}, ${summary.backend}); f16=${caps.f16} timestamps=${caps.timestampQuery} ` +
        `subgroups=${caps.subgroups ? `${caps.subgroups.minSize}-${caps.subgroups.maxSize}` : 'no'} subgroup-matrix=${caps.subgroupMatrix.length}${limitsProfile === 'default' ? ' limits=webgpu-default' : ''}; ${policySummary(derivePolicy(caps))}`,
    );
  }
  return gd;
}
