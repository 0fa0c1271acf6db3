/**
 * The engine on Node: Dawn's WebGPU (npm `webgpu`), the one process-wide device and runtime, and
 * the environment variables that reach the device (WEBGPU_MOE_DAWN_FLAGS, WEBGPU_MOE_KERNELS, WEBGPU_MOE_LIMITS).
 * Dawn's GPU instance must stay referenced for the life of the process, or V8 may collect it and
 * Dawn segfaults later inside ProcessEvents (docs/DESIGN.md §3). The device itself is opened by
 * the platform-free src/kernels/device.ts; the browser opens it on navigator.gpu (src/web/).
 */
import { create, globals } from 'webgpu';
import { KERNELS_ENV, LIMITS_ENV, type KernelFamilyChoice, type LimitsProfile } from '../caps.ts';
import { openDevice, type GpuDevice } from '../device.ts';
import { DawnRuntime } from '../runtime.ts';

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

/** The Dawn toggle behind AcquireOptions.preciseTimestamps. */
const PRECISE_TIMESTAMPS_FLAG = 'disable-dawn-features=timestamp_quantization';

/** Extra Dawn toggles from the environment, comma-separated (e.g. enable-dawn-features=allow_unsafe_apis for experimental features). */
const DAWN_FLAGS_ENV = 'WEBGPU_MOE_DAWN_FLAGS';

let dawn: GPU | null = null;
let dawnFlags: readonly string[] = [];

/** True when the process's Dawn instance was created with unquantized timestamps. */
export function timestampsPrecise(): boolean {
  return dawnFlags.includes(PRECISE_TIMESTAMPS_FLAG);
}

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

let current: Promise<GpuDevice> | null = null;

/** Request the adapter and device once; later calls return the same device. */
function acquireDevice(options: AcquireOptions = {}): Promise<GpuDevice> {
  if (!current) {
    const flags = [...(options.dawnFlags ?? []), ...(process.env[DAWN_FLAGS_ENV] ?? '').split(',').filter(Boolean)];
    if (options.preciseTimestamps && !flags.includes(PRECISE_TIMESTAMPS_FLAG)) flags.push(PRECISE_TIMESTAMPS_FLAG);
    current = openDevice(gpuInstance(flags), {
      ...(options.announce !== undefined ? { announce: options.announce } : {}),
      ...(options.kernels !== undefined ? { kernels: options.kernels } : {}),
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
      ...(process.env[KERNELS_ENV] !== undefined ? { kernelsEnv: process.env[KERNELS_ENV] } : {}),
      ...(process.env[LIMITS_ENV] !== undefined ? { limitsEnv: process.env[LIMITS_ENV] } : {}),
    }).catch((e: unknown) => {
      current = null;
      throw e;
    });
  }
  return current;
}

let runtime: Promise<DawnRuntime> | null = null;

/** The process-wide runtime (acquires the device on first call). */
export function getRuntime(options?: AcquireOptions): Promise<DawnRuntime> {
  if (!runtime) {
    runtime = acquireDevice(options).then((gd) => new DawnRuntime(gd));
    runtime.catch(() => (runtime = null));
  }
  return runtime;
}
