/**
 * Loads shaders/*.wgsl and specialises them at compile time.
 *
 * Two mechanisms, both typed: WGSL `override` constants (for plain numbers the compiler
 * may fold), and `{{NAME}}` template slots for what overrides cannot express — generated,
 * unrolled code blocks, element types (f32/f16), optional epilogues. Every slot must be
 * filled and every template value used, so a typo fails loudly instead of compiling wrong.
 */
import { shaderSource } from '#shader-source';

/**
 * The text of shaders/<name>.wgsl, by name ('fill', 'include/grid', 'test/broken'). Where it comes
 * from is the platform's: package.json `imports` maps `#shader-source` to the files on Node
 * (src/kernels/node/shader-files.ts) and, in the browser bundle, to a module that scripts/web/build.ts
 * generates from the same files. One source of truth either way: shaders/.
 */
export type ShaderSource = (name: string) => string;

export type TemplateValue = string | number | boolean;
export type TemplateParams = Readonly<Record<string, TemplateValue>>;

/**
 * The shader sources a runtime reads, by name (the file under shaders/ without .wgsl: 'fill',
 * 'test/broken'), with their includes resolved: a line `// #include "name"` is replaced by
 * shaders/include/name.wgsl (WGSL has no preprocessor; helpers shared by several shaders live
 * there once). Each runtime owns one (base-runtime.ts), so nothing is cached in module state.
 */
export class ShaderLibrary {
  private readonly sources = new Map<string, string>();

  constructor(private readonly read: ShaderSource = shaderSource) {}

  source(name: string, including: readonly string[] = []): string {
    let src = this.sources.get(name);
    if (src === undefined) {
      if (including.includes(name)) throw new Error(`${[...including, name].join(' -> ')}: include cycle`);
      const text = this.read(name);
      src = text.replace(/^[ \t]*\/\/ #include "([A-Za-z0-9_-]+)"[ \t]*$/gm, (_, inc: string) => this.source(`include/${inc}`, [...including, name]));
      this.sources.set(name, src);
    }
    return src;
  }
}

function render(v: TemplateValue): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`template value ${v} is not finite`);
    return Number.isInteger(v) ? String(v) : v.toExponential();
  }
  return v;
}

/** Fill `{{NAME}}` slots. Throws on a missing value or an unused one. */
export function specialize(source: string, params: TemplateParams, shaderName = 'shader'): string {
  const used = new Set<string>();
  const out = source.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, key: string) => {
    if (!(key in params)) throw new Error(`${shaderName}.wgsl: template slot {{${key}}} has no value`);
    used.add(key);
    return render(params[key]!);
  });
  for (const key of Object.keys(params)) {
    if (!used.has(key)) throw new Error(`${shaderName}.wgsl: template value "${key}" matches no {{${key}}} slot`);
  }
  return out;
}

/** A stable cache key for a shader + its specialisation. */
export function specializationKey(name: string, entry: string, params: TemplateParams, constants: Record<string, number>): string {
  const p = Object.keys(params)
    .sort()
    .map((k) => `${k}=${render(params[k]!)}`);
  const c = Object.keys(constants)
    .sort()
    .map((k) => `${k}=${constants[k]}`);
  return `${name}#${entry}|${p.join(',')}|${c.join(',')}`;
}
