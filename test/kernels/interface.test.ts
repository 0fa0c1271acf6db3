/**
 * Kernel interfaces by name (src/kernels/wgsl-interface.ts): every entry point of every kernel
 * family has a readable interface (its bindings by name, at most one uniform struct with a known
 * layout), and the uniform encoder follows WGSL's layout rules.
 */
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ShaderLibrary } from '../../src/kernels/shader-loader.ts';
import { encodeUniforms, kernelInterface, orderBindings, structLayout } from '../../src/kernels/wgsl-interface.ts';

const SHADERS = resolve(import.meta.dirname, '..', '..', 'shaders');

describe('kernel interfaces', () => {
  it('every entry point of every shader has bindings by name and at most one uniform block', () => {
    // The engine's shaders, and the test oracles' and benchmarks' (shaders/test/, shaders/bench/),
    // but not the deliberately broken fixture.
    const shaders = ['', 'test/', 'bench/']
      .flatMap((dir) =>
        readdirSync(join(SHADERS, dir))
          .filter((f) => f.endsWith('.wgsl'))
          .map((f) => `${dir}${f.slice(0, -5)}`),
      )
      .filter((n) => n !== 'test/broken');
    expect(shaders.length).toBeGreaterThan(15);
    let entries = 0;
    const library = new ShaderLibrary();
    for (const name of shaders) {
      const code = library.source(name);
      for (const m of code.matchAll(/@compute[^\n]*\n\s*fn\s+([A-Za-z_][A-Za-z0-9_]*)/g)) {
        const iface = kernelInterface(code, m[1]!);
        // Generated kernels (matmul) declare their bindings through a template slot.
        if (!code.includes('{{BINDINGS}}')) expect(iface.bindings.size, `${name}:${m[1]}`).toBeGreaterThan(0);
        if (iface.uniform) expect(iface.uniform.size % 16, `${name}:${m[1]}`).toBe(0);
        // What a dispatch must bind: a subset of the declared buffers (all of it for generated kernels, once specialised).
        for (const u of iface.used) expect(iface.bindings.has(u), `${name}:${m[1]} uses ${u}`).toBe(true);
        entries++;
      }
    }
    expect(entries).toBeGreaterThan(40);
  });

  it('lays out scalars, vectors and arrays of vec4 as WGSL does, and encodes by name', () => {
    const code = 'struct P { a: u32, b: f32, v: vec2<f32>, w: vec3<u32>, arr: array<vec4<u32>, 2>, i: i32 }';
    const l = structLayout(code, 'P');
    expect(l.fields.map((f) => [f.name, f.offset])).toEqual([
      ['a', 0],
      ['b', 4],
      ['v', 8],
      ['w', 16],
      ['arr', 32],
      ['i', 64],
    ]);
    expect(l.size).toBe(80);
    const dv = new DataView(encodeUniforms(l, { a: 7, b: 0.5, v: [1, 2], w: [3, 4, 5], arr: [1, 2, 3, 4, 5], i: -2 }, 'test'));
    expect([
      dv.getUint32(0, true),
      dv.getFloat32(4, true),
      dv.getFloat32(12, true),
      dv.getUint32(24, true),
      dv.getUint32(32, true),
      dv.getUint32(48, true),
      dv.getUint32(52, true),
      dv.getInt32(64, true),
    ]).toEqual([7, 0.5, 2, 5, 1, 5, 0, -2]);
    expect(() => encodeUniforms(l, { a: 1, b: 1, v: [1, 2, 3], w: [], arr: [], i: 0 }, 'test')).toThrow(/uniform v holds 2 values, got 3/);
    expect(() => encodeUniforms(l, { a: 1.5, b: 1, v: [], w: [], arr: [], i: 0 }, 'test')).toThrow(/a = 1.5 is not a u32/);
  });

  it('knows which buffers an entry point uses: through the functions it calls, not through members or comments', () => {
    const code = [
      '@group(0) @binding(0) var<storage, read> x: array<f32>;',
      '@group(0) @binding(1) var<storage, read_write> y: array<f32>;',
      '@group(0) @binding(2) var<storage, read_write> z: array<f32>;',
      'fn helper(i: u32) -> f32 { return x[i]; }',
      'fn twice(i: u32) -> f32 { return helper(i) * 2.0; }',
      '@compute @workgroup_size(1)',
      'fn a(@builtin(global_invocation_id) gid: vec3<u32>) { y[gid.x] = twice(gid.x); } // z is not used',
      '@compute @workgroup_size(1)',
      'fn b(@builtin(global_invocation_id) gid: vec3<u32>) { z[gid.x] = 1.0; }',
    ].join('\n');
    expect([...kernelInterface(code, 'a').used].sort()).toEqual(['x', 'y']);
    expect([...kernelInterface(code, 'b').used]).toEqual(['z']);
    const iface = kernelInterface(code, 'a');
    expect(() => orderBindings(iface, { y: 1 }, 'k')).toThrow(/kernel k: storage binding x is missing/);
    expect(() => orderBindings(iface, { x: 1, y: 2, z: 3 }, 'k')).toThrow(/kernel k: storage binding z is not used by this entry point/);
    expect(orderBindings(iface, { y: 2, x: 1 }, 'k').map((b) => b.name)).toEqual(['x', 'y']);
  });

  it('names the problem when an entry point reads no or several uniform blocks', () => {
    const code =
      'struct A { x: u32 }\nstruct B { y: u32 }\n@group(1) @binding(0) var<uniform> ua: A;\n@group(1) @binding(0) var<uniform> ub: B;\n@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1)\nfn both() { o[0] = ua.x + ub.y; }\n@compute @workgroup_size(1)\nfn one() { o[0] = ub.y; }';
    expect(kernelInterface(code, 'one').uniform?.struct).toBe('B');
    expect(() => kernelInterface(code, 'both')).toThrow(/reads several of the uniform blocks ua, ub/);
    expect(() => kernelInterface(code, 'missing')).toThrow(/entry point missing not found/);
  });
});
