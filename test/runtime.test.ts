import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../src/kernels/runtime.ts';
import { MetaRuntime } from '../src/kernels/meta-runtime.ts';
import { LimitError } from '../src/kernels/base-runtime.ts';
import type { Backend } from '../src/kernels/tensor.ts';
import { sizeClass } from '../src/kernels/buffer-pool.ts';
import { specialize } from '../src/kernels/shader-loader.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/kernels/f16.ts';
import { testRuntime } from './reference/gpu.ts';
import { seeded } from './reference/rng.ts';
import { spawnAsync } from './support/spawn.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

describe('device', () => {
  it('acquires an adapter with the engine limits', () => {
    expect(rt.caps.adapter.description + rt.caps.adapter.device + rt.caps.adapter.vendor).not.toBe('');
    // The default WebGPU limit is 128 MiB / 8 buffers; we request what the adapter has.
    expect(rt.device.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(8);
    expect(rt.device.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
  });

  it('prints fix instructions, not a stack trace, when no adapter exists', async () => {
    // Point the Vulkan loader at no driver at all: Dawn then finds no adapter.
    const r = await spawnAsync(process.execPath, ['train.js', '--smoke'], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('No WebGPU adapter found');
    expect(r.stderr).toContain('mesa-vulkan-drivers');
    expect(r.stderr).toContain('bookworm-backports');
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no JS stack frames
  });
});

describe('upload / download', () => {
  it('round-trips odd sizes in every dtype', async () => {
    const { seed, rng } = seeded();
    for (const n of [1, 3, 7, 255, 257, 1023, 4099]) {
      const f = Float32Array.from(rng.uniformArray(n, -100, 100));
      const t = rt.upload(f, [n]);
      expect(await t.readF32(), `f32 n=${n} seed=${seed}`).toEqual(f);
      t.dispose();
      const ints = Int32Array.from({ length: n }, () => rng.int(1 << 30) - (1 << 29));
      const ti = rt.upload(ints, [n], 'i32');
      expect(await ti.read()).toEqual(ints);
      ti.dispose();
      const halves = Float32Array.from({ length: n }, () => f16BitsToF32(f32ToF16Bits(rng.uniform(-8, 8))));
      const th = rt.upload(halves, [n], 'f16');
      expect(await th.read()).toEqual(halves);
      th.dispose();
    }
  });

  // fill, zeros and the NaN poison of new buffers: test/kernels/fill.test.ts.
});

describe('pipeline cache and shader specialisation', () => {
  it('builds a pipeline once for repeated use of one specialisation', async () => {
    const before = rt.pipelines.builds;
    for (let i = 0; i < 2; i++) {
      const t = rt.upload([1, 2, 3, 4, 5], [5]);
      rt.fill(t, 7);
      expect(Array.from(await t.readF32())).toEqual([7, 7, 7, 7, 7]);
      t.dispose();
    }
    // 'fill' may have been built by an earlier test; it is never built twice.
    expect(rt.pipelines.builds - before).toBeLessThanOrEqual(1);
    const k1 = rt.kernel({ shader: 'fill' });
    const k2 = rt.kernel({ shader: 'fill' });
    expect(k1).toBe(k2);
  });

  it('rejects unfilled template slots and unused values', () => {
    expect(() => specialize('let x = {{A}};', {}, 't')).toThrow(/slot \{\{A\}\} has no value/);
    expect(() => specialize('let x = {{A}};', { A: 1, B: 2 }, 't')).toThrow(/"B" matches no/);
    expect(specialize('let x: {{T}} = {{A}};', { A: 1.5, T: 'f32' })).toBe('let x: f32 = 1.5e+0;');
  });
});

describe('errors', () => {
  it('turns a WGSL compile error into an exception naming the kernel', async () => {
    // A deliberately broken shader lives in the test fixtures folder of shaders/.
    rt.kernel({ shader: 'test/broken' });
    await expect(rt.sync()).rejects.toThrow(/test\/broken/);
  });

  it('binds buffers and writes uniforms by name: a name the shader lacks throws at once, naming the kernel', () => {
    const k = rt.kernel({ shader: 'fill' });
    const t = rt.upload([1, 2, 3], [3]);
    expect(() => rt.dispatch(k, { dest: t }, [1], { bits: 0, words: 3 })).toThrow(/kernel fill:main: no storage binding named dest \(bindings: dst\)/);
    expect(() => rt.dispatch(k, { dst: t }, [1], { bits: 0 })).toThrow(/uniform words of struct Params was not given/);
    expect(() => rt.dispatch(k, { dst: t }, [1], { bits: 0, words: 3, count: 1 })).toThrow(
      /uniform count is not a field of struct Params \(fields: bits, words, _p0, _p1\)/,
    );
    expect(() => rt.dispatch(k, { dst: t }, [1])).toThrow(/declares uniform params \(struct Params\) but none were given/);
    expect(() => rt.dispatch(k, { dst: t }, [1], { bits: -1, words: 3 })).toThrow(/bits = -1 is not a u32/);
    t.dispose();
  });

  it('turns a buffer bound to a binding the entry point does not use into an exception naming the kernel', () => {
    // The router's backward declares dprobs_extra but reads it only when EXTRA does: Dawn would fail
    // the submit; the runtime throws at the dispatch (base-runtime.ts), as the meta runtime does.
    const k = rt.kernel({ shader: 'router', entry: 'backward', params: { EXTRA: '0.0' }, constants: { RENORM: 0, CHUNK_WG: 8 } });
    const [probs, dw, dl, extra] = [rt.upload([0.5, 0.5], [1, 2]), rt.upload([1], [1, 1]), rt.empty([1, 2]), rt.upload([0, 0], [1, 2])];
    const idx = rt.upload([0], [1, 1], 'u32');
    expect(() => rt.dispatch(k, { b_probs: probs, b_idx: idx, b_dw: dw, d_logits: dl, dprobs_extra: extra }, [1], { n: 1, e: 2, k: 1, chunk: 0 })).toThrow(
      /kernel router:backward#\w+: storage binding dprobs_extra is not used by this entry point/,
    );
    for (const t of [probs, dw, dl, extra, idx]) t.dispose();
  });
});

describe('validation shared by both runtimes (base-runtime.ts)', () => {
  /** The Dawn runtime and a meta runtime of the same caps. */
  const runtimes = (): [string, Backend][] => [
    ['dawn', rt],
    ['meta', new MetaRuntime(rt.caps)],
  ];
  const fill = (r: Backend) => r.kernel({ shader: 'fill' });

  it('a missing or an unused binding throws at the dispatch, naming the kernel and the binding, on both', () => {
    for (const [name, r] of runtimes()) {
      const t = r.upload([1, 2, 3], [3]);
      expect(() => r.dispatch(fill(r), {}, [1], { bits: 0, words: 3 }), name).toThrow(/kernel fill:main: storage binding dst is missing/);
      const k = r.kernel({ shader: 'router', entry: 'backward', params: { EXTRA: '0.0' }, constants: { RENORM: 0, CHUNK_WG: 8 } });
      const b = { b_probs: r.upload([0.5, 0.5], [1, 2]), b_idx: r.upload([0], [1, 1], 'u32'), b_dw: r.upload([1], [1, 1]), d_logits: r.empty([1, 2]) };
      const u = { n: 1, e: 2, k: 1, chunk: 0 };
      expect(() => r.dispatch(k, b, [1], u), name).not.toThrow();
      expect(() => r.dispatch(k, { ...b, dprobs_extra: t }, [1], u), name).toThrow(/kernel router:backward#\w+: storage binding dprobs_extra is not used/);
      const withExtra = r.kernel({ shader: 'router', entry: 'backward', params: { EXTRA: 'dprobs_extra[i]' }, constants: { RENORM: 0, CHUNK_WG: 8 } });
      expect(() => r.dispatch(withExtra, b, [1], u), name).toThrow(/storage binding dprobs_extra is missing/);
      for (const x of [t, ...Object.values(b)]) x.dispose();
      expect(() => r.dispatch(fill(r), { dst: t }, [1], { bits: 0, words: 3 }), name).toThrow(/used after dispose \(kernel fill:main, binding dst\)/);
    }
    return rt.sync(); // nothing invalid reached Dawn
  });

  it('a copy out of range or unaligned throws on both', () => {
    for (const [name, r] of runtimes()) {
      const a = r.empty([100]);
      const b = r.empty([10]);
      expect(() => r.copy(a, b), name).toThrow(/out of range/); // 400 bytes into a 256-byte buffer
      expect(() => r.copy(b, a, { srcOffset: 2, bytes: 4 }), name).toThrow(/out of range/);
      expect(() => r.copy(b, a, { dstOffset: 400 }), name).not.toThrow(); // a's size class holds it
      a.dispose();
      expect(() => r.copy(b, a), name).toThrow(/used after dispose/);
      b.dispose();
    }
    return rt.sync();
  });

  it("limits: recorded as violations on the meta runtime, thrown before Dawn's validation on Dawn", async () => {
    const meta = new MetaRuntime(rt.caps);
    const grid = rt.policy.limits.maxComputeWorkgroupsPerDimension + 1;
    const t = rt.empty([1000]);
    const m = meta.empty([1000]);
    expect(() => rt.dispatch(fill(rt), { dst: t }, [grid], { bits: 0, words: 1 })).toThrow(LimitError);
    expect(() => rt.dispatch(fill(rt), { dst: t }, [grid], { bits: 0, words: 1 })).toThrow(
      /kernel fill:main: \d+ workgroups in one grid dimension, over maxComputeWorkgroupsPerDimension/,
    );
    meta.dispatch(fill(meta), { dst: m }, [grid], { bits: 0, words: 1 });
    expect(meta.violations).toEqual([{ limit: 'maxComputeWorkgroupsPerDimension', subject: 'fill:main', value: grid, max: grid - 1 }]);
    // Lowered through the policy: a 4 KiB buffer over a 1 KiB binding limit, a 4 KiB buffer over a 1 KiB buffer limit.
    const low = { limits: { maxStorageBufferBindingSize: 1024, maxBufferSize: 1024 } };
    const before = rt.memory().liveBytes;
    rt.withPolicy(low, () => {
      expect(() => rt.dispatch(fill(rt), { dst: t }, [1], { bits: 0, words: 1 })).toThrow(/buffer tensor is 4096 bytes, over maxStorageBufferBindingSize/);
      expect(() => rt.empty([1000], 'f32', 'big')).toThrow(/buffer big would be 4096 bytes, over maxBufferSize/);
    });
    expect(rt.memory().liveBytes).toBe(before); // nothing was allocated
    meta.withPolicy(low, () => {
      meta.dispatch(fill(meta), { dst: m }, [1], { bits: 0, words: 1 });
      meta.empty([1000], 'f32', 'big').dispose();
    });
    expect(meta.violations.slice(1)).toEqual([
      { limit: 'maxStorageBufferBindingSize', subject: 'tensor', kernel: 'fill:main', value: 4096, max: 1024 },
      { limit: 'maxBufferSize', subject: 'big', value: 4096, max: 1024 },
    ]);
    expect(meta.counters.dispatches).toBe(2); // recorded anyway: the planner reports, it does not stop
    t.dispose();
    await rt.sync();
  });

  it('kernels, shader sources and generated templates are per runtime, not module state', () => {
    const a = new MetaRuntime(rt.caps);
    const b = new MetaRuntime(rt.caps);
    expect(a.kernel({ shader: 'fill' })).toBe(a.kernel({ shader: 'fill' }));
    expect(a.kernel({ shader: 'fill' })).not.toBe(b.kernel({ shader: 'fill' }));
    expect(a.shaders).not.toBe(b.shaders);
    let builds = 0;
    const build = () => ({ n: ++builds });
    expect(a.memo('x', 'k', build)).toBe(a.memo('x', 'k', build));
    expect(b.memo('x', 'k', build)).not.toBe(a.memo('x', 'k', build));
    expect(builds).toBe(2);
  });
});

describe('buffer pool', () => {
  it('size classes waste at most 12.5%', () => {
    for (const b of [1, 255, 256, 257, 4095, 4097, 10_000, 1 << 20, (1 << 20) + 1, 123_456_789]) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      expect(c - b).toBeLessThanOrEqual(Math.max(256, b * 0.125));
    }
  });

  it('reuses buffers and returns live bytes to the start after 1000 cycles', async () => {
    await rt.sync();
    const start = rt.memory();
    const sizes = [100, 4096, 5000, 65_536, 1000];
    for (let i = 0; i < 1000; i++) {
      const a = rt.empty([sizes[i % sizes.length]!]);
      const b = rt.empty([sizes[(i + 2) % sizes.length]!]);
      a.dispose();
      b.dispose();
    }
    await rt.sync();
    const end = rt.memory();
    expect(end.liveBytes).toBe(start.liveBytes);
    expect(end.liveBuffers).toBe(start.liveBuffers);
    // 2000 acquisitions served by a handful of buffers.
    expect(end.created - start.created).toBeLessThanOrEqual(sizes.length * 2);
    expect(end.acquired - start.acquired).toBe(2000);
  });

  it('keeps contents correct when a released buffer is reused by later work', async () => {
    const a = rt.upload([1, 1, 1, 1], [4]);
    rt.fill(a, 3); // recorded, not yet submitted
    a.dispose(); // released while recorded work still uses it
    const b = rt.upload([9, 9, 9, 9], [4]); // likely the same buffer: upload must not overtake fill
    expect(Array.from(await b.readF32())).toEqual([9, 9, 9, 9]);
    b.dispose();
  });

  it('builds a bind group once per (kernel, buffers) and forgets them when the pool destroys buffers', async () => {
    await rt.sync();
    const cache = rt.recorder.bindGroups;
    // Count from an empty cache: groups that earlier tests built for a pooled buffer that `a`
    // reuses would otherwise be found, and the counts would depend on test order.
    cache.forget();
    const [h0, m0] = [cache.hits, cache.misses];
    const a = rt.empty([1000]); // poisoned (testRuntime): a fill of NaN at uniform slot 0
    for (let i = 1; i <= 6; i++) rt.fill(a, i); // slots 1..6
    await rt.sync();
    // One storage group for `a`, built once and reused by the 6 later fills; one uniform group per
    // slot (0..6), each new.
    expect([cache.misses - m0, cache.hits - h0], 'first recording: [misses, hits]').toEqual([1 + 7, 6]);
    const [h1, m1] = [cache.hits, cache.misses];
    for (let i = 1; i <= 5; i++) rt.fill(a, i * 10); // the next submit uses slots 0..4 again
    expect(Array.from((await a.readF32()).subarray(0, 3))).toEqual([50, 50, 50]);
    expect([cache.misses - m1, cache.hits - h1], 'a repeated recording builds no new bind group: [misses, hits]').toEqual([0, 5 + 5]);
    a.dispose();
    await rt.trim(); // destroys the free buffers, `a`'s among them
    const b = rt.empty([1000]); // a new buffer: a cached group for the old one must not be used
    rt.fill(b, 7);
    expect(Array.from((await b.readF32()).subarray(0, 2))).toEqual([7, 7]);
    b.dispose();
  });

  it('throws on double release', () => {
    const t = rt.empty([4]);
    rt.releaseBuffer(t.buffer);
    expect(() => rt.releaseBuffer(t.buffer)).toThrow(/released twice/);
  });
});
