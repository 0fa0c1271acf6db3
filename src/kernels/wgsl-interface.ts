/**
 * A kernel's interface, read from its specialised WGSL, so wrappers bind buffers and write uniforms
 * BY NAME and a mismatch fails when the kernel is created or dispatched — not as a wrong result:
 *   bindings  `@group(0) @binding(i) var<storage, ...> name` -> name -> i;
 *   uniforms  the struct of the `@group(1) @binding(0) var<uniform>` the entry point uses, with
 *             WGSL's layout rules (scalars 4 B, vec2 8, vec3/vec4 16, arrays at their stride),
 *             so the TS writer is generated from the WGSL declaration.
 */

export type UniformScalar = 'u32' | 'i32' | 'f32';

export interface UniformField {
  name: string;
  scalar: UniformScalar;
  /** Components per element (1 for a scalar, 2..4 for vecN). */
  width: number;
  /** Array length (1 when not an array). */
  count: number;
  /** Byte offset of the first element, and the distance between elements. */
  offset: number;
  stride: number;
}

export interface UniformLayout {
  struct: string;
  fields: readonly UniformField[];
  /** Bytes (a multiple of 16, WGSL's uniform-struct alignment). */
  size: number;
}

export interface KernelInterface {
  /** Group-0 binding index of each storage buffer name the shader declares. */
  bindings: ReadonlyMap<string, number>;
  /**
   * The storage buffers the entry point statically uses (its body and the functions it calls):
   * exactly the ones a dispatch must bind, since layouts are 'auto'.
   */
  used: ReadonlySet<string>;
  /** The entry point's uniform struct, or null when it uses none. */
  uniform: UniformLayout | null;
}

/** A uniform value: a number, or the elements of an array or vector field. */
export type UniformValues = Readonly<Record<string, number | readonly number[]>>;

function fieldType(type: string): { scalar: UniformScalar; width: number; count: number; align: number; size: number } {
  const t = type.replace(/\s+/g, '');
  const arr = /^array<(.+),(\d+)u?>$/.exec(t);
  if (arr) {
    const el = fieldType(arr[1]!);
    const stride = Math.ceil(el.size / el.align) * el.align;
    if (stride % 16 !== 0) throw new Error(`uniform array element ${arr[1]} must be 16-byte aligned (WGSL uniform arrays have a 16-byte stride)`);
    return { scalar: el.scalar, width: el.width, count: Number(arr[2]) * el.count, align: 16, size: stride * Number(arr[2]) };
  }
  const vec = /^vec([234])<(u32|i32|f32)>$/.exec(t);
  if (vec) {
    const n = Number(vec[1]);
    return { scalar: vec[2] as UniformScalar, width: n, count: 1, align: n === 2 ? 8 : 16, size: n * 4 };
  }
  if (t === 'u32' || t === 'i32' || t === 'f32') return { scalar: t, width: 1, count: 1, align: 4, size: 4 };
  throw new Error(`uniform field type ${type} is not supported (u32, i32, f32, vecN of them, arrays of vec4)`);
}

/** The layout of `struct name { ... }` in `code`. */
export function structLayout(code: string, name: string): UniformLayout {
  const m = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(code);
  if (!m) throw new Error(`struct ${name} not found`);
  const body = m[1]!.replace(/\/\/[^\n]*/g, '');
  const fields: UniformField[] = [];
  let at = 0;
  // Split on commas outside <...> (array<vec4<u32>, 4> has one).
  let depth = 0;
  let cur = '';
  const parts: string[] = [];
  for (const ch of body) {
    if (ch === '<') depth++;
    if (ch === '>') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const part of parts.map((p) => p.trim()).filter(Boolean)) {
    const f = /^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+)$/.exec(part);
    if (!f) throw new Error(`struct ${name}: cannot read field "${part}"`);
    const t = fieldType(f[2]!);
    at = Math.ceil(at / t.align) * t.align;
    const isArray = /^array</.test(f[2]!.trim());
    fields.push({ name: f[1]!, scalar: t.scalar, width: t.width, count: isArray ? t.count : 1, offset: at, stride: isArray ? 16 : t.size });
    at += t.size;
  }
  return { struct: name, fields, size: Math.max(16, Math.ceil(at / 16) * 16) };
}

/** The body of the function declared at `at` (brace-matched from the first `{` after it). */
function bodyAt(code: string, at: number, name: string): string {
  const open = code.indexOf('{', at);
  let depth = 0;
  for (let i = open; i >= 0 && i < code.length; i++) {
    if (code[i] === '{') depth++;
    else if (code[i] === '}' && --depth === 0) return code.slice(open, i + 1);
  }
  throw new Error(`function ${name}: unbalanced braces`);
}

/** The body of `fn entry(...) { ... }` (brace-matched). */
function entryBody(code: string, entry: string): string {
  const m = new RegExp(`fn\\s+${entry}\\s*\\(`).exec(code);
  if (!m) throw new Error(`entry point ${entry} not found`);
  return bodyAt(code, m.index, entry);
}

/**
 * Names of `names` that the entry point statically uses: those its body, or the body of a function
 * it calls (transitively), mentions as an identifier (not as a member: `gid.x`). Comments are
 * ignored. A superset only if a function-scope declaration shadows a buffer's name, which the
 * shaders do not do.
 */
function staticallyUsed(code: string, entry: string, names: Iterable<string>): Set<string> {
  const clean = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const bodies = new Map<string, string>();
  for (const m of clean.matchAll(/\bfn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) bodies.set(m[1]!, bodyAt(clean, m.index! + m[0].length, m[1]!));
  if (!bodies.has(entry)) throw new Error(`entry point ${entry} not found`);
  const reached = new Set<string>([entry]);
  const todo = [entry];
  const used = new Set<string>();
  const wanted = [...names];
  while (todo.length) {
    const body = bodies.get(todo.pop()!) ?? '';
    // An identifier, not a member access (`gid.x` does not use a buffer named x).
    for (const f of bodies.keys()) if (!reached.has(f) && new RegExp(`(?<![.\\w])${f}\\s*\\(`).test(body)) reached.add(f) && todo.push(f);
    for (const n of wanted) if (!used.has(n) && new RegExp(`(?<![.\\w])${n}\\b`).test(body)) used.add(n);
  }
  return used;
}

export function kernelInterface(code: string, entry: string): KernelInterface {
  const bindings = new Map<string, number>();
  for (const m of code.matchAll(/@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var<storage[^>]*>\s*([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (bindings.has(m[2]!)) throw new Error(`binding name ${m[2]} is declared twice`);
    bindings.set(m[2]!, Number(m[1]));
  }
  const uniforms = [...code.matchAll(/@group\(\s*1\s*\)\s*@binding\(\s*0\s*\)\s*var<uniform>\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([A-Za-z_][A-Za-z0-9_]*)/g)].map(
    (m) => ({ v: m[1]!, struct: m[2]! }),
  );
  const used = staticallyUsed(code, entry, bindings.keys());
  if (uniforms.length === 0) return { bindings, used, uniform: null };
  // Several shaders declare one uniform block per entry point: take the one this entry reads.
  const body = entryBody(code, entry);
  const reads = uniforms.length === 1 ? uniforms : uniforms.filter((u) => new RegExp(`\\b${u.v}\\.`).test(body));
  if (reads.length !== 1)
    throw new Error(`entry point ${entry} reads ${reads.length === 0 ? 'none' : 'several'} of the uniform blocks ${uniforms.map((u) => u.v).join(', ')}`);
  return { bindings, used, uniform: structLayout(code, reads[0]!.struct) };
}

/**
 * The bytes of a uniform block from named values: every field must be given (arrays may be given
 * fewer elements: the rest are 0), and no name the struct does not have.
 */
export function encodeUniforms(layout: UniformLayout, values: UniformValues, kernel: string): ArrayBuffer {
  const buf = new ArrayBuffer(layout.size);
  const dv = new DataView(buf);
  const known = new Set(layout.fields.map((f) => f.name));
  for (const k of Object.keys(values))
    if (!known.has(k)) throw new Error(`kernel ${kernel}: uniform ${k} is not a field of struct ${layout.struct} (fields: ${[...known].join(', ')})`);
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) {
      if (f.name.startsWith('_')) continue; // padding
      throw new Error(`kernel ${kernel}: uniform ${f.name} of struct ${layout.struct} was not given`);
    }
    const flat = typeof v === 'number' ? [v] : v;
    const capacity = f.count * f.width;
    if (flat.length > capacity || (typeof v === 'number' && capacity !== 1))
      throw new Error(`kernel ${kernel}: uniform ${f.name} holds ${capacity} values, got ${typeof v === 'number' ? 'a number' : flat.length}`);
    flat.forEach((x, i) => {
      const at = f.offset + Math.floor(i / f.width) * f.stride + (i % f.width) * 4;
      if (f.scalar === 'f32') dv.setFloat32(at, x, true);
      else if (f.scalar === 'i32') dv.setInt32(at, x, true);
      else {
        if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new Error(`kernel ${kernel}: uniform ${f.name} = ${x} is not a u32`);
        dv.setUint32(at, x, true);
      }
    });
  }
  return buf;
}

/**
 * The storage buffers of a dispatch in binding order, from names. Exactly the buffers the entry
 * point uses must be given (layouts are 'auto'): an unknown name, a buffer the entry point does
 * not use, or one it uses that is missing throws, naming the kernel and the binding.
 */
export function orderBindings<T>(iface: KernelInterface, bindings: Readonly<Record<string, T>>, kernel: string): { index: number; name: string; value: T }[] {
  const out: { index: number; name: string; value: T }[] = [];
  for (const [name, value] of Object.entries(bindings)) {
    const index = iface.bindings.get(name);
    if (index === undefined) throw new Error(`kernel ${kernel}: no storage binding named ${name} (bindings: ${[...iface.bindings.keys()].join(', ')})`);
    if (!iface.used.has(name))
      throw new Error(
        `kernel ${kernel}: storage binding ${name} is not used by this entry point, so it must not be bound (it uses: ${[...iface.used].join(', ') || 'none'})`,
      );
    out.push({ index, name, value });
  }
  for (const name of iface.used)
    if (!(name in bindings))
      throw new Error(
        `kernel ${kernel}: storage binding ${name} is missing (the entry point uses ${[...iface.used].join(', ')}; given: ${Object.keys(bindings).join(', ') || 'none'})`,
      );
  return out.sort((a, b) => a.index - b.index);
}

/** The uniform block of a dispatch, encoded, or null; given when and only when the kernel declares one. */
export function checkUniforms(kernel: { label: string; iface: KernelInterface }, values: UniformValues | undefined): ArrayBuffer | null {
  const layout = kernel.iface.uniform;
  if (!layout) {
    if (values && Object.keys(values).length)
      throw new Error(`kernel ${kernel.label} declares no uniform block but was given ${Object.keys(values).join(', ')}`);
    return null;
  }
  if (!values) throw new Error(`kernel ${kernel.label} declares uniform params (struct ${layout.struct}) but none were given`);
  return encodeUniforms(layout, values, kernel.label);
}
