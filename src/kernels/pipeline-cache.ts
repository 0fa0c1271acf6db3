/**
 * Pipeline cache keyed by shader + specialisation: each compute pipeline (and its
 * bind-group layouts) is built once per process. Compilation errors are captured in an
 * error scope and reported against the kernel's name.
 */
import { shaderSource, specialize, specializationKey, type TemplateParams } from './shader-loader.ts';
import type { ErrorSink } from './recorder.ts';

export interface KernelSpec {
  /** File name under shaders/, without .wgsl. */
  shader: string;
  entry?: string;
  /** Values for `{{NAME}}` template slots. */
  params?: TemplateParams;
  /** WGSL `override` constants. */
  constants?: Record<string, number>;
}

export interface Kernel {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  /** Layouts of group 0 (storage) and, when the shader declares it, group 1 (uniform params). */
  readonly storageLayout: GPUBindGroupLayout;
  readonly uniformLayout: GPUBindGroupLayout | null;
}

export class PipelineCache {
  private readonly cache = new Map<string, Kernel>();
  /** Number of pipelines actually compiled (tests read it to prove caching). */
  builds = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly errors: ErrorSink,
  ) {}

  get(spec: KernelSpec): Kernel {
    const entry = spec.entry ?? 'main';
    const params = spec.params ?? {};
    const constants = spec.constants ?? {};
    const key = specializationKey(spec.shader, entry, params, constants);
    const hit = this.cache.get(key);
    if (hit) return hit;

    // Specialised variants get a short hash of their key: template values can be whole generated
    // code blocks, too long for labels and error messages.
    const label = Object.keys(params).length || Object.keys(constants).length ? `${spec.shader}:${entry}#${hash(key)}` : `${spec.shader}:${entry}`;
    const code = specialize(shaderSource(spec.shader), params, spec.shader);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module, entryPoint: entry, constants },
    });
    this.errors.watch(this.device.popErrorScope(), `kernel ${label}`, 'validation');
    this.builds++;
    const usesUniforms = /@group\(\s*1\s*\)/.test(code);
    const kernel: Kernel = {
      label,
      pipeline,
      storageLayout: pipeline.getBindGroupLayout(0),
      uniformLayout: usesUniforms ? pipeline.getBindGroupLayout(1) : null,
    };
    this.cache.set(key, kernel);
    return kernel;
  }

  get size(): number {
    return this.cache.size;
  }
}

/** FNV-1a, 32-bit, as 8 hex digits. */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
