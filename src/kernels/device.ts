/**
 * Opening a device on a WebGPU `GPU` object, and the device's capabilities (caps.ts), read once
 * here. Platform-free: Node passes Dawn's instance (src/kernels/node/dawn.ts, which also keeps the
 * one process-wide device), the browser `navigator.gpu` (src/web/device.ts); both get the same
 * requested limits and features and build the same DeviceCaps.
 */
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

export interface OpenOptions {
  /** Print the adapter line once (default true). */
  announce?: boolean;
  /** Kernel family: 'auto' (the adapter's own; `kernelsEnv` may force one), 'cpu' or 'gpu'. */
  kernels?: KernelFamilyChoice;
  /** The WEBGPU_MOE_KERNELS environment variable's value, read by the Node caller (caps.ts chooseFamily). */
  kernelsEnv?: string;
  /** What runs the device, for the adapter line (default 'vulkan': Dawn on Node; the page says 'browser WebGPU'). */
  backend?: string;
  /**
   * 'adapter' (the adapter's maxima), or 'default': WebGPU's default limits, the minimum every
   * adapter guarantees (caps.ts WEBGPU_DEFAULT_LIMITS). Unset: `limitsEnv`, else 'adapter'.
   */
  limits?: LimitsProfile;
  /** The WEBGPU_MOE_LIMITS environment variable's value, read by the Node caller (caps.ts chooseLimits). */
  limitsEnv?: string;
}

/** Dawn's feature name for tensor-core matmuls (VK_KHR_cooperative_matrix on Vulkan). */
export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

// Limits the engine wants as large as the adapter allows: big activations and weights
// live in single storage bindings, and kernels bind many buffers.
const WANTED_LIMITS: readonly string[] = [...LIMIT_NAMES, 'maxBindGroups'];

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

function summarize(info: DawnAdapterInfo | undefined, backend: string): AdapterSummary {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    backend: isCpuAdapter(info) ? `${backend} (CPU)` : backend,
  };
}

/** The caps of an opened device: what it enabled, not what the adapter could. */
function readCaps(device: GPUDevice, info: DawnAdapterInfo | undefined, options: OpenOptions, limitsProfile: LimitsProfile): DeviceCaps {
  const cpuAdapter = isCpuAdapter(info);
  const { family, forced } = chooseFamily(cpuAdapter, options.kernels, options.kernelsEnv);
  const limits = Object.fromEntries(LIMIT_NAMES.map((n) => [n, (device.limits as unknown as Record<string, number>)[n] ?? 0])) as unknown as DeviceLimits;
  const subgroups = device.features.has('subgroups') ? { minSize: info?.subgroupMinSize ?? 0, maxSize: info?.subgroupMaxSize ?? 0 } : null;
  return {
    adapter: summarize(info, options.backend ?? 'vulkan'),
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

/** Request the adapter and a device with the adapter's largest limits and the features the kernels use. */
export async function openDevice(gpu: GPU, options: OpenOptions = {}): Promise<GpuDevice> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuError(NO_ADAPTER_HELP, 'adapter', 'no-adapter');

  const limitsProfile = chooseLimits(options.limits, options.limitsEnv);
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
  const caps = readCaps(device, adapter.info as DawnAdapterInfo, options, limitsProfile);
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
