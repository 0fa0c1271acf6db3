import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { getRuntime, timestampsPrecise } from '../../src/kernels/node/dawn.ts';
import { matmul } from '../../src/kernels/matmul.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, scratch, tinyConfig, writeConfig } from '../train/cli-helpers.ts';
import { GpuProfiler, formatProfile, opType, profileJson, shaderFile, summarize, type LabelStats } from '../../src/kernels/profiler.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  // Each test file runs in its own process, so this is the first acquisition: the toggle applies.
  // No NaN poison here: it would add fill dispatches to every rt.empty and skew the call counts.
  rt = await getRuntime({ announce: false, preciseTimestamps: true });
});

let live: GpuProfiler[] = [];
afterEach(async () => {
  for (const p of live) {
    await p.flush();
    p.destroy();
  }
  live = [];
  expect(rt.recorder.timer).toBeNull();
});

function profiler(): GpuProfiler {
  const p = new GpuProfiler(rt);
  live.push(p);
  return p;
}

function inputs(M: number, K: number, N: number) {
  const a = rt.upload(
    Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 13) / 13 - 0.5),
    [M, K],
  );
  const b = rt.upload(
    Float32Array.from({ length: K * N }, (_, i) => ((i * 5) % 11) / 11 - 0.5),
    [K, N],
  );
  return { a, b };
}

describe('labels', () => {
  it('op type cuts at #, shader file at : or #', () => {
    expect(opType('matmul:main#1a2b3c4d')).toBe('matmul:main');
    expect(opType('fill:main')).toBe('fill:main');
    expect(shaderFile('matmul:main#1a2b3c4d')).toBe('matmul');
    expect(shaderFile('attention:forward')).toBe('attention');
    expect(shaderFile('odd#12')).toBe('odd');
  });

  it('summarize groups by label, op type and shader file, sorted by total time', () => {
    const s = (calls: number, totalNs: number, minNs = totalNs / calls, maxNs = totalNs / calls): LabelStats => ({ calls, totalNs, minNs, maxNs });
    const stats = new Map<string, LabelStats>([
      ['matmul:main#aaaaaaaa', s(3, 3_000_000, 500_000, 1_500_000)],
      ['matmul:main#bbbbbbbb', s(2, 1_000_000)],
      ['matmul:grouped#cccccccc', s(1, 2_000_000)],
      ['fill:main', s(4, 4_000_000)],
    ]);
    const byLabel = summarize(stats, 'label');
    expect(byLabel.rows.map((r) => r.name)).toEqual(['fill:main', 'matmul:main#aaaaaaaa', 'matmul:grouped#cccccccc', 'matmul:main#bbbbbbbb']);
    expect(byLabel.gpuMs).toBeCloseTo(10, 9);
    expect(byLabel.dispatches).toBe(10);

    const byOp = summarize(stats, 'op');
    expect(byOp.rows.map((r) => [r.name, r.calls, r.totalMs])).toEqual([
      ['fill:main', 4, 4],
      ['matmul:main', 5, 4],
      ['matmul:grouped', 1, 2],
    ]);
    const mm = byOp.rows.find((r) => r.name === 'matmul:main')!;
    expect(mm.meanUs).toBeCloseTo(800, 9);
    expect(mm.minUs).toBeCloseTo(500, 9);
    expect(mm.maxUs).toBeCloseTo(1500, 9);
    expect(mm.share).toBeCloseTo(0.4, 12);
    expect(byOp.rows.reduce((a, r) => a + r.share, 0)).toBeCloseTo(1, 12);

    const byShader = summarize(stats, 'shader');
    expect(byShader.rows.map((r) => [r.name, r.calls, r.share])).toEqual([
      ['matmul', 6, 0.6],
      ['fill', 4, 0.4],
    ]);
  });
});

describe('GPU profiler', () => {
  it('uses unquantized timestamps when asked', () => {
    expect(rt.caps.timestampQuery).toBe(true); // lavapipe exposes it (docs/DESIGN.md §3)
    expect(timestampsPrecise()).toBe(true);
  });

  it('times known kernels: labels, positive durations, exact call counts', async () => {
    const big = rt.empty([1 << 20]);
    const { a, b } = inputs(64, 96, 80);
    await rt.sync();
    const p = profiler();
    const dispatches0 = rt.recorder.dispatches;
    const submits0 = rt.recorder.submits;
    p.resume();
    for (let i = 0; i < 3; i++) rt.fill(big, i);
    const c1 = matmul(a, b);
    const c2 = matmul(a, b);
    const [v] = await rt.readMany([big]);
    p.pause();
    await p.flush();
    expect(rt.recorder.dispatches - dispatches0).toBe(5);
    expect(rt.recorder.submits - submits0).toBe(1); // profiling adds no submit
    expect(v![123]).toBe(2);

    const stats = p.labelStats();
    const fill = stats.get('fill:main');
    expect(fill?.calls).toBe(3);
    expect(fill!.minNs).toBeGreaterThan(0);
    // shaders/matmul-<kind>.wgsl: the policy's kernel (blocked on the CPU family, tiled on the GPU family).
    const mmLabels = [...stats.keys()].filter((l) => l.startsWith(`matmul-${rt.policy.matmul.kind}:`));
    expect(mmLabels).toHaveLength(1); // both calls use the same specialised kernel
    const mm = stats.get(mmLabels[0]!)!;
    expect(mm.calls).toBe(2);
    expect(mm.minNs).toBeGreaterThan(0);

    const sum = p.summary('op');
    expect(sum.dispatches).toBe(5);
    expect(sum.submits).toBe(1);
    expect(sum.windows).toBe(1);
    expect(sum.lostDispatches).toBe(0);
    expect(sum.rows.map((r) => r.name).sort()).toEqual(['fill:main', opType(mmLabels[0]!)].sort());
    expect(sum.gpuMs).toBeGreaterThan(0);
    // Timed dispatches run one after another inside the window: their sum cannot exceed it.
    expect(sum.gpuMs).toBeLessThanOrEqual(sum.wallMs);
    expect(sum.busyFraction).toBeGreaterThan(0);
    expect(sum.busyFraction).toBeLessThanOrEqual(1);

    const table = formatProfile(sum, { byShader: p.summary('shader') });
    expect(table).toContain('fill:main');
    expect(table).toContain(`matmul-${rt.policy.matmul.kind}:main`);
    expect(table).toMatch(/by shader file: .*matmul-(blocked|tiled)/);
    const json = profileJson(p) as { byOp: { name: string; calls: number }[]; byLabel: { name: string }[] };
    expect(json.byOp.find((r) => r.name === 'fill:main')?.calls).toBe(3);
    expect(json.byLabel.map((r) => r.name)).toContain(mmLabels[0]);
    for (const t of [big, a, b, c1, c2]) t.dispose();
  });

  it('profiling on changes no results and no pool accounting; off records nothing', async () => {
    const { a, b } = inputs(48, 64, 40);
    const first = matmul(a, b);
    const off1 = await first.read();
    first.dispose();
    const mem0 = rt.memory();

    const p = profiler();
    p.resume();
    const on = matmul(a, b);
    const onV = await on.read();
    p.pause();
    await p.flush();
    expect(onV).toEqual(off1);
    expect(p.summary().dispatches).toBe(1);
    on.dispose();
    const mem1 = rt.memory();
    expect(mem1.liveBytes).toBe(mem0.liveBytes);
    expect(mem1.allocatedBytes).toBe(mem0.allocatedBytes);

    // Paused: nothing is timed, and results are unchanged.
    const off2 = matmul(a, b);
    const t = rt.empty([1000]);
    rt.fill(t, 1);
    expect(await off2.read()).toEqual(off1);
    await p.flush();
    expect(p.summary().dispatches).toBe(1);
    expect(p.summary().submits).toBe(1);
    for (const x of [a, b, off2, t]) x.dispose();
  });

  it('keeps dispatches recorded before a pause timed when the submit comes later', async () => {
    const t = rt.empty([4096]);
    const p = profiler();
    p.resume();
    rt.fill(t, 1);
    rt.fill(t, 2);
    p.pause();
    rt.fill(t, 3); // same recording, untimed
    expect(Array.from((await t.read()).subarray(0, 2))).toEqual([3, 3]);
    await p.flush();
    expect(p.labelStats().get('fill:main')?.calls).toBe(2);
    t.dispose();
  });

  it('spreads a submit with more dispatches than one query set holds over several sets', async () => {
    const t = rt.empty([64]);
    const p = profiler();
    p.resume();
    const n = 2048 + 100; // one set holds 4096 queries = 2048 dispatches
    for (let i = 0; i < n; i++) rt.fill(t, i);
    expect((await t.read())[0]).toBe(n - 1);
    p.pause();
    await p.flush();
    const s = p.summary();
    expect(s.dispatches).toBe(n);
    expect(s.lostDispatches).toBe(0);
    expect(s.submits).toBe(1);

    // The sets are reused by the next window.
    p.reset();
    p.resume();
    for (let i = 0; i < 10; i++) rt.fill(t, i);
    await rt.sync();
    p.pause();
    await p.flush();
    expect(p.summary().dispatches).toBe(10);
    t.dispose();
  });

  it('does nothing, without error, on a device without timestamp queries', async () => {
    const noTs = Object.create(rt) as DawnRuntime;
    Object.defineProperty(noTs, 'caps', { value: { ...rt.caps, timestampQuery: false } });
    const p = new GpuProfiler(noTs);
    expect(p.supported).toBe(false);
    p.resume();
    expect(rt.recorder.timer).toBeNull();
    const t = rt.empty([16]);
    rt.fill(t, 5);
    await rt.sync();
    p.pause();
    await p.flush();
    expect(p.summary().dispatches).toBe(0);
    expect(p.summary().windows).toBe(1);
    t.dispose();
  });
});

describe('train.js --profile', () => {
  it('prints a per-op table and writes profile.json covering the training steps', async () => {
    const d = scratch();
    const cfg = tinyConfig({ schedule: { steps: 2, warmupSteps: 1, microBatch: 4 }, checkpoint: { every: 0, keep: 1 } });
    const r = await runCli(d, ['--config', writeConfig(d, cfg), '--profile']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[profile\] 2 steps: wall [\d.]+ ms, GPU [\d.]+ ms in \d+ timed dispatches/);
    expect(r.stderr).toMatch(/\nmatmul-(blocked|tiled):main +\d+ +[\d.]+/);
    expect(r.stderr).toContain('by shader file:');
    const j = JSON.parse(readFileSync(join(d, 'runs/t/profile.json'), 'utf8')) as {
      steps: number;
      gpuMs: number;
      wallMs: number;
      dispatches: number;
      submits: number;
      preciseTimestamps: boolean;
      byOp: { name: string; calls: number; totalMs: number; share: number }[];
      byShader: { name: string }[];
    };
    expect(j.steps).toBe(2);
    expect(j.submits).toBe(2); // one per optimizer step: profiling adds none
    expect(j.preciseTimestamps).toBe(true);
    expect(j.gpuMs).toBeGreaterThan(0);
    expect(j.gpuMs).toBeLessThanOrEqual(j.wallMs);
    expect(j.byOp.reduce((a, x) => a + x.calls, 0)).toBe(j.dispatches);
    expect(j.byOp.reduce((a, x) => a + x.share, 0)).toBeCloseTo(1, 9);
    // The matmul's shader is shaders/matmul-<kind>.wgsl, the run's policy's kernel.
    expect(j.byOp.map((x) => x.name)).toEqual(expect.arrayContaining(['adamw:main']));
    expect(j.byOp.map((x) => x.name).filter((n) => /^matmul-(blocked|tiled):main$/.test(n))).toHaveLength(1);
    expect(j.byShader.map((x) => x.name).filter((n) => /^matmul-(blocked|tiled)$/.test(n))).toHaveLength(1);

    // Without the flag: no table, no file.
    const d2 = scratch();
    const r2 = await runCli(d2, ['--config', writeConfig(d2, cfg)]);
    expect(r2.status, r2.stderr).toBe(0);
    expect(r2.stderr).not.toContain('[profile]');
    expect(existsSync(join(d2, 'runs/t/profile.json'))).toBe(false);
  });
});
