/**
 * Compute pipelines of the Dawn runtime: a specialised shader (base-runtime.ts reads it and its
 * interface; the runtime caches kernels by specialisation, so each is compiled once per runtime)
 * becomes a pipeline with its bind-group layouts. Compilation errors are captured in an error
 * scope and reported against the kernel's name.
 */
import type { Kernel, KernelSpec } from './kernel-spec.ts';
import type { ErrorSink } from './errors.ts';
import type { ShaderUnit } from './base-runtime.ts';

/** A kernel compiled by Dawn. */
export interface DawnKernel extends Kernel {
  readonly pipeline: GPUComputePipeline;
  /** Layouts of group 0 (storage) and, when the shader declares it, group 1 (uniform params). */
  readonly storageLayout: GPUBindGroupLayout;
  readonly uniformLayout: GPUBindGroupLayout | null;
}

export class PipelineCache {
  /** Number of pipelines actually compiled (tests read it to prove caching). */
  builds = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly errors: ErrorSink,
  ) {}

  compile(spec: KernelSpec, { label, code, iface }: ShaderUnit): DawnKernel {
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module, entryPoint: spec.entry ?? 'main', constants: spec.constants ?? {} },
    });
    this.errors.watch(this.device.popErrorScope(), `kernel ${label}`, 'validation');
    this.builds++;
    return {
      label,
      iface,
      pipeline,
      storageLayout: pipeline.getBindGroupLayout(0),
      uniformLayout: iface.uniform ? pipeline.getBindGroupLayout(1) : null,
    };
  }
}
