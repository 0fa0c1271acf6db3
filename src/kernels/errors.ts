/** Errors raised by the WebGPU runtime, each naming the kernel or buffer involved. */

export class GpuError extends Error {
  constructor(
    message: string,
    /** The kernel (pipeline label) or buffer the error is about, when known. */
    readonly subject: string,
    readonly kind: 'validation' | 'out-of-memory' | 'internal' | 'device-lost' | 'no-adapter',
  ) {
    super(message);
    this.name = 'GpuError';
  }
}

export const NO_ADAPTER_HELP = [
  'No WebGPU adapter found: Dawn needs a Vulkan driver.',
  'Fix on Debian/Ubuntu without a GPU, install Mesa lavapipe (CPU Vulkan):',
  '  bash scripts/setup.sh      (does the steps below, idempotently)',
  'or by hand on Debian bookworm (its own Mesa 22.3 is too old for Dawn):',
  '  add a deb822 source for suite bookworm-backports, then',
  '  apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  'With an NVIDIA/AMD GPU: install its Vulkan driver and the Vulkan loader (libvulkan1).',
].join('\n');

export type ErrorKind = 'validation' | 'out-of-memory' | 'internal';

/**
 * Collects the results of error scopes and uncaptured device errors; `check()` throws the first,
 * naming the kernel or submit it came from (checked at sync points, not per dispatch).
 */
export class ErrorSink {
  private pending: Promise<GpuError | null>[] = [];
  private uncaptured: GpuError[] = [];

  constructor(device: GPUDevice) {
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.uncaptured.push(new GpuError(`uncaptured WebGPU error: ${ev.error.message}`, 'unknown', 'internal'));
    };
  }

  watch(scope: Promise<GPUError | null>, subject: string, kind: ErrorKind): void {
    this.pending.push(scope.then((err) => (err ? new GpuError(`${kind} error in ${subject}: ${err.message.trim()}`, subject, kind) : null)));
  }

  /** Throw the first error recorded since the last check. */
  async check(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    const results = await Promise.all(pending);
    const first = results.find((e) => e !== null) ?? this.uncaptured.shift();
    this.uncaptured = [];
    if (first) throw first;
  }
}
