/**
 * Device acquisition through Dawn (npm `webgpu`). One process-wide device: Dawn's GPU
 * instance must stay referenced for the life of the process, or V8 may collect it and
 * Dawn segfaults later inside ProcessEvents (DESIGN.md §3).
 */
import { create, globals } from 'webgpu';
import { GpuError, NO_ADAPTER_HELP } from './errors.ts';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
}

export interface DeviceFeatures {
  f16: boolean;
  timestampQuery: boolean;
  subgroups: boolean;
}

export interface GpuDevice {
  device: GPUDevice;
  adapter: AdapterSummary;
  features: DeviceFeatures;
  limits: GPUSupportedLimits;
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
}

/** The Dawn toggle behind AcquireOptions.preciseTimestamps. */
export const PRECISE_TIMESTAMPS_FLAG = 'disable-dawn-features=timestamp_quantization';

// Limits the engine wants as large as the adapter allows: big activations and weights
// live in single storage bindings, and kernels bind many buffers.
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
  'maxUniformBufferBindingSize',
] as const;

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

function summarize(info: GPUAdapterInfo | undefined): AdapterSummary {
  const backend = /llvmpipe|lavapipe|swiftshader/i.test(`${info?.device} ${info?.description}`) ? 'vulkan (CPU)' : 'vulkan';
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    backend,
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

async function open(options: AcquireOptions): Promise<GpuDevice> {
  const flags = [...(options.dawnFlags ?? [])];
  if (options.preciseTimestamps && !flags.includes(PRECISE_TIMESTAMPS_FLAG)) flags.push(PRECISE_TIMESTAMPS_FLAG);
  const gpu = gpuInstance(flags);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuError(NO_ADAPTER_HELP, 'adapter', 'no-adapter');

  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  for (const f of ['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[]) {
    if (adapter.features.has(f)) requiredFeatures.push(f);
  }
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'webgpu-moe' });
  const summary = summarize(adapter.info);
  const gd: GpuDevice = {
    device,
    adapter: summary,
    features: {
      f16: device.features.has('shader-f16'),
      timestampQuery: device.features.has('timestamp-query'),
      subgroups: device.features.has('subgroups'),
    },
    limits: device.limits,
    lost: null,
  };
  void device.lost.then((info) => {
    gd.lost = new GpuError(`WebGPU device lost (${info.reason}): ${info.message}`, 'device', 'device-lost');
    if (info.reason !== 'destroyed') console.error(`[webgpu-moe] ${gd.lost.message}`);
  });
  if (options.announce ?? true) {
    console.error(
      `[webgpu-moe] adapter: ${summary.vendor} ${summary.device || summary.description} ` +
        `(${summary.architecture || '?'}, ${summary.backend}); f16=${gd.features.f16} timestamps=${gd.features.timestampQuery}`,
    );
  }
  return gd;
}
