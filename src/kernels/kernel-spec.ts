/**
 * What a wrapper asks a runtime for: a shader file, an entry point and its specialisation. The
 * Dawn runtime compiles it into a pipeline (pipeline-cache.ts); the meta runtime only names it.
 */
import { specializationKey, type TemplateParams } from './shader-loader.ts';
import type { KernelInterface } from './wgsl-interface.ts';

export interface KernelSpec {
  /** File name under shaders/, without .wgsl. */
  shader: string;
  entry?: string;
  /** Values for `{{NAME}}` template slots. */
  params?: TemplateParams;
  /** WGSL `override` constants. */
  constants?: Record<string, number>;
}

/** A compiled (or, on the meta runtime, named) kernel; wrappers only pass it back to dispatch. */
export interface Kernel {
  /** `shader:entry`, plus `#hash` of the specialisation when there is one (profiles group by it). */
  readonly label: string;
  /** Its bindings and uniform struct by name, read from the WGSL (wgsl-interface.ts). */
  readonly iface: KernelInterface;
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

/**
 * The label of a specialisation. Specialised variants get a short hash of their key: template
 * values can be whole generated code blocks, too long for labels and error messages.
 */
export function kernelLabel(spec: KernelSpec, key: string): string {
  const entry = spec.entry ?? 'main';
  const specialised = Object.keys(spec.params ?? {}).length || Object.keys(spec.constants ?? {}).length;
  return specialised ? `${spec.shader}:${entry}#${hash(key)}` : `${spec.shader}:${entry}`;
}

/**
 * Kernels by specialisation, for both runtimes. The full key holds every template value, which for
 * generated kernels (the matmul's unrolled blocks) is kilobytes of WGSL: hashing it on every
 * dispatch cost more than recording. Wrappers that reuse one params object per variant (matmul.ts
 * does) are found by that object's identity first.
 */
export class SpecCache<T> {
  private readonly byKey = new Map<string, T>();
  private readonly byParams = new WeakMap<object, Map<string, T>>();

  get(spec: KernelSpec, build: (key: string) => T): T {
    const params = spec.params ?? {};
    const rest = `${spec.entry ?? 'main'}|${JSON.stringify(spec.constants ?? {})}`;
    let byRest = this.byParams.get(params);
    const hit = byRest?.get(`${spec.shader}|${rest}`);
    if (hit !== undefined) return hit;
    const key = specializationKey(spec.shader, spec.entry ?? 'main', params, spec.constants ?? {});
    let v = this.byKey.get(key);
    if (v === undefined) this.byKey.set(key, (v = build(key)));
    if (!byRest) this.byParams.set(params, (byRest = new Map()));
    byRest.set(`${spec.shader}|${rest}`, v);
    return v;
  }

  get size(): number {
    return this.byKey.size;
  }
}
