/**
 * Pipeline cache keyed by shader + specialisation: each compute pipeline (and its bind-group
 * layouts) is built once per process. Compilation errors are captured in an error scope and
 * reported against the kernel's name.
 */
import { shaderSource, specialize } from './shader-loader.ts';
import { SpecCache, kernelLabel, type Kernel, type KernelSpec } from './kernel-spec.ts';
import type { ErrorSink } from './errors.ts';
import { kernelInterface } from './wgsl-interface.ts';

/** A kernel compiled by Dawn. */
export interface DawnKernel extends Kernel {
  readonly pipeline: GPUComputePipeline;
  /** Layouts of group 0 (storage) and, when the shader declares it, group 1 (uniform params). */
  readonly storageLayout: GPUBindGroupLayout;
  readonly uniformLayout: GPUBindGroupLayout | null;
}

export class PipelineCache {
  private readonly cache = new SpecCache<DawnKernel>();
  /** Number of pipelines actually compiled (tests read it to prove caching). */
  builds = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly errors: ErrorSink,
  ) {}

  get(spec: KernelSpec): DawnKernel {
    return this.cache.get(spec, (key) => this.build(spec, key));
  }

  private build(spec: KernelSpec, key: string): DawnKernel {
    const params = spec.params ?? {};
    const label = kernelLabel(spec, key);
    const code = specialize(shaderSource(spec.shader), params, spec.shader);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module, entryPoint: spec.entry ?? 'main', constants: spec.constants ?? {} },
    });
    this.errors.watch(this.device.popErrorScope(), `kernel ${label}`, 'validation');
    this.builds++;
    const iface = kernelInterface(code, spec.entry ?? 'main');
    return {
      label,
      iface,
      pipeline,
      storageLayout: pipeline.getBindGroupLayout(0),
      uniformLayout: iface.uniform ? pipeline.getBindGroupLayout(1) : null,
    };
  }

  get size(): number {
    return this.cache.size;
  }
}
