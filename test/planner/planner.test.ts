/**
 * The memory planner without a GPU: it records the real step on the meta runtime. Parameter bytes,
 * categories, verdicts, suggestions that really fit once applied, per-binding limits, speed.
 */
import { describe, it, expect } from 'vitest';
import { planCli } from './plan-cli.ts';
import { countParameters } from '../../src/model/config.ts';
import { sizeClass } from '../../src/kernels/buffer-pool.ts';
import { parseConfig, type TrainConfig } from '../../src/train/config.ts';
import { loadConfig } from '../../src/train/config-file.ts';
import { planRefuses, planRun } from '../../src/train/plan/planner.ts';
import { planPeak } from '../../src/train/plan/simulate.ts';
import { formatPlan } from '../../src/train/plan/format.ts';
import { namedTarget, GIB } from '../../src/train/plan/targets.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { MetaRuntime } from '../../src/kernels/meta-runtime.ts';

const RTX3090 = namedTarget('rtx-3090');

/** A config of a preset with synthetic data (the planner never loads data). */
function config(preset: string, over: Record<string, unknown> = {}): TrainConfig {
  const sched = { steps: 10, microBatch: 8, ...(over.schedule as object) };
  return parseConfig({
    model: { preset, ...(over.model as object) },
    data: { source: { kind: 'synthetic', series: 4, length: 600 }, contextLength: 512, ...(over.data as object) },
    optim: { lr: 1e-3 },
    schedule: sched,
    ...(over.precision ? { precision: over.precision } : {}),
    ...(over.logging ? { logging: over.logging } : {}),
  });
}

/** Apply a suggestion's `--set` assignments to a config, as the CLI would. */
function applied(cfg: TrainConfig, set: readonly string[]): TrainConfig {
  return parseConfig(cfg, '(test)', set);
}

describe('memory planner (meta runtime)', () => {
  it('TimeMoE-50M: parameters and each AdamW state are the pool bytes of 113,352,192 f32 values, tensor by tensor', () => {
    const cfg = config('timemoe-50m');
    const plan = planRun(cfg, { target: RTX3090 });
    expect(plan.model.parameters).toBe(113_352_192);
    // What the pool holds for the parameters: every tensor's bytes rounded to its size class.
    const meta = new MetaRuntime(RTX3090.caps);
    const model = new TimeMoeModel(meta, cfg.model, 0);
    const pool = model.params.reduce((a, p) => a + sizeClass(p.data.byteLength), 0);
    expect(model.parameterCount).toBe(countParameters(cfg.model).total);
    expect(plan.categories.parameters).toBe(pool);
    expect(plan.categories.optimizer).toBe(2 * pool);
    // Between steps: parameters, AdamW state and the small training state only.
    expect(plan.residentBytes - 3 * pool).toBeGreaterThan(0);
    expect(plan.residentBytes - 3 * pool).toBeLessThan(2 * 2 ** 20);
    // The categories add up to the peak.
    expect(Object.values(plan.categories).reduce((a, b) => a + b, 0)).toBe(plan.peakBytes);
  });

  it('plans the shipped 3090 configs within 24 GiB and finds the micro-batch limit', () => {
    const plan50 = planRun(config('timemoe-50m', { schedule: { microBatch: 32, accumulation: 4 } }), { target: RTX3090 });
    expect(plan50.deviceFits).toBe(true);
    expect(plan50.peakBytes).toBeGreaterThan(8 * GIB);
    const tooBig = config('timemoe-200m', { schedule: { microBatch: 32 }, data: { contextLength: 2048 } });
    const plan = planRun(tooBig, { target: RTX3090 });
    expect(plan.deviceFits).toBe(false);
    expect(plan.peakBytes).toBeGreaterThan(24 * GIB);
    expect(plan.suggestions.length).toBeGreaterThanOrEqual(2);
    for (const s of plan.suggestions) {
      const after = planRun(applied(tooBig, s.set), { target: RTX3090, suggestions: false });
      expect(after.deviceFits, s.text).toBe(true);
      expect(after.peakBytes, s.text).toBe(s.peakBytes);
    }
    // The micro-batch suggestion is the largest that fits, and keeps the windows per step.
    const mb = plan.suggestions.find((s) => s.set[0]!.startsWith('schedule.microBatch='))!;
    const v = Number(mb.set[0]!.split('=')[1]);
    expect(mb.set).toContain(`schedule.accumulation=${Math.ceil(32 / v)}`);
    expect(
      planRun(applied(tooBig, [`schedule.microBatch=${v + 1}`, `schedule.accumulation=${Math.ceil(32 / (v + 1))}`]), { target: RTX3090, suggestions: false })
        .deviceFits,
    ).toBe(false);
  });

  it('a parameter over the per-binding limit is answered with the model width, not the batch', () => {
    // hidden 8192: q_proj.weight is 256 MiB, over lavapipe's 128 MiB per binding.
    const cfg = config('small-moe', {
      model: { hidden: 8192, heads: 64, layers: 1, experts: 2, moeIntermediate: 64, sharedIntermediate: 0, horizons: [1] },
      schedule: { microBatch: 1 },
      data: { contextLength: 8 },
    });
    const lavapipe = namedTarget('lavapipe');
    const plan = planRun(cfg, { target: lavapipe, budgetBytes: 64 * GIB });
    expect(plan.deviceFits).toBe(false);
    expect(plan.violations.map((v) => v.limit)).toContain('maxStorageBufferBindingSize');
    expect(plan.largestBuffer.region).toBe('setup');
    expect(plan.suggestions.some((s) => /microBatch|contextLength/.test(s.set.join(' ')))).toBe(false);
    const width = plan.suggestions.find((s) => s.set[0]!.startsWith('model.hidden='))!;
    expect(width.text).toMatch(/is a parameter: batch and context cannot shrink it/);
    expect(planPeak(applied(cfg, width.set), lavapipe).violations.filter((v) => v.limit !== 'maxComputeWorkgroupsPerDimension')).toEqual([]);
    expect(formatPlan(plan)).toMatch(/DOES NOT FIT - .* over the 128\.0 MiB per-binding limit/);
  });

  it('recompute and f16 activations lower the peak; recompute moves it into backward', () => {
    const base = planRun(config('timemoe-50m', { schedule: { microBatch: 16 } }), { target: RTX3090 });
    const rc = planRun(config('timemoe-50m', { schedule: { microBatch: 16, recompute: true } }), { target: RTX3090 });
    const f16 = planRun(config('timemoe-50m', { schedule: { microBatch: 16 }, precision: { activations: 'f16' } }), { target: RTX3090 });
    expect(rc.peakBytes).toBeLessThan(base.peakBytes * 0.5);
    expect(rc.peakPhase).toMatch(/^backward/);
    expect(rc.categories.backward).toBeGreaterThan(0);
    expect(f16.peakBytes).toBeLessThan(base.peakBytes);
    expect(f16.forwardEndBytes - f16.residentBytes).toBeLessThan((base.forwardEndBytes - base.residentBytes) * 0.6);
    // Without recompute every layer holds the same activations at the end of the forward.
    expect(new Set(base.perLayer.map((l) => l.forward)).size).toBe(1);
  });

  it('plans TimeMoE-200M in well under 10 s, without building its weights', () => {
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    const plan = planRun(config('timemoe-200m', { schedule: { microBatch: 8 } }), { target: RTX3090 });
    const ms = performance.now() - t0;
    expect(plan.model.parameters).toBe(453_196_800);
    expect(plan.deviceFits).toBe(true);
    expect(ms).toBeLessThan(10_000);
    // 453M f32 values would be 1.7 GiB of host arrays.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(0.5 * GIB);
  });

  it('train.js --plan --json: the whole plan as JSON, exit 2 when it does not fit', async () => {
    const ok = await planCli(['--config', 'timemoe-50m-3090.json', '--plan', '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    const plan = JSON.parse(ok.stdout) as {
      peakBytes: number;
      deviceFits: boolean;
      hostFits: boolean | null;
      target: { name: string };
      categories: Record<string, number>;
      perLayer: unknown[];
      largestBuffer: { bytes: number };
    };
    expect(plan.deviceFits).toBe(true);
    expect(plan.hostFits).toBeNull(); // nothing offloaded
    expect(plan.target.name).toBe('rtx-3090');
    expect(plan.perLayer).toHaveLength(12);
    expect(plan.largestBuffer.bytes).toBeGreaterThan(0);
    const no = await planCli(['--config', 'timemoe-50m-3090.json', '--plan', '--budget-gb', '4']);
    expect(no.status).toBe(2);
    expect(no.stdout).toMatch(/Verdict: DOES NOT FIT/);
    expect(no.stdout).toMatch(/--set schedule\.microBatch=\d+/);
    const bad = await planCli(['--config', 'small-moe.json', '--plan', '--target', 'rtx-9999']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown target "rtx-9999" \(one of: rtx-3090, .*this\)/);
  });
});

describe('planning the 2.4B Time-MoE on one RTX 3090 (optim.offload "host")', () => {
  const cfg = loadConfig('timemoe-2.4b-3090.json');
  const plan = planRun(cfg, { target: RTX3090, hostBytes: 64 * GIB });
  const small = planRun(cfg, { target: RTX3090, hostBytes: 16 * GIB });

  it('fits the card, with the optimizer state in host memory', () => {
    expect(plan.model.parameters).toBe(2_416_545_792);
    expect(plan.model.activeParameters).toBe(1_057_591_296);
    expect(plan.deviceFits).toBe(true);
    expect(plan.peakBytes).toBeLessThan(plan.budget.usableBytes);
    expect(plan.categories.optimizer).toBe(0); // no AdamW moments on the GPU
    const h = plan.host!;
    expect(h.masterBytes).toBe(4 * 2_416_545_792);
    expect(h.momentsBytes).toBe(8 * 2_416_545_792);
    // f16 working weights for the matrices, f32 for norms: a little over 2 bytes per parameter.
    expect(h.upBytes).toBeGreaterThan(2 * 2_416_545_792);
    expect(h.upBytes).toBeLessThan(2.01 * 2_416_545_792);
    expect(h.downBytes).toBeGreaterThan(h.upBytes); // expert gradients come back in f32
  });

  it('counts the FLOPs of the real step: 6 x active x tokens, plus the recomputed forward, plus attention', () => {
    const tokens = plan.tokensPerMicroBatch * plan.run.accumulation;
    expect(tokens).toBe(64 * 1024);
    const dense = 8 * plan.model.activeParameters * tokens; // forward 2 + backward 4 + recompute 2
    expect(plan.flopsPerStep).toBeGreaterThan(0.95 * dense);
    expect(plan.flopsPerStep).toBeLessThan(1.25 * dense);
    expect(plan.backwardFlopsPerStep).toBeGreaterThan(0.6 * plan.flopsPerStep);
  });

  it('two verdicts: the device fits, the host given with --host-gb does not, and --plan refuses it', () => {
    expect(small.deviceFits).toBe(true);
    expect(small.hostFits).toBe(false);
    expect(small.host!.availableFrom).toBe('--host-gb');
    expect(planRefuses(small)).toBe(true);
    const text = formatPlan(small);
    expect(text).toMatch(/^Verdict: FITS - peak 13\.57 GiB/m);
    expect(text).toMatch(/^Host verdict: DOES NOT FIT - the offloaded optimizer needs 27\.13 GiB, --host-gb gives 16\.00 GiB$/m);
    // The device side fits: no device knob is suggested.
    expect(small.suggestions).toEqual([]);
  });

  it("against this machine's RAM a host that does not fit is a warning naming --host-gb, not a refusal of --plan", () => {
    // The same plan, as if made without --host-gb on a machine with 16 GiB (os.totalmem cannot be set).
    const asThisMachine = { ...small, host: { ...small.host!, availableFrom: 'this machine' as const } };
    expect(planRefuses(asThisMachine)).toBe(false);
    expect(formatPlan(asThisMachine)).toMatch(
      /^Host verdict: WARNING - the offloaded optimizer needs 27\.13 GiB of host RAM and this machine has 16\.00 GiB: a training run here would be refused\. .*--host-gb <its RAM in GiB>/m,
    );
    expect(planRefuses({ ...asThisMachine, deviceFits: false })).toBe(true);
    expect(planRefuses(plan)).toBe(false);
    expect(formatPlan(plan)).toMatch(/^Host verdict: FITS - the offloaded optimizer takes 27\.13 GiB of 64\.00 GiB \(--host-gb\)$/m);
  });

  it('without offload it does not fit, and the suggestion is the offload', () => {
    const none = planRun(
      parseConfig(cfg, '(test)', [
        'optim.offload=none',
        'precision.activations=f32',
        'schedule.recompute=false',
        'schedule.microBatch=1',
        'schedule.accumulation=2',
      ]),
      { target: RTX3090 },
    );
    expect(none.deviceFits).toBe(false);
    expect(none.suggestions.map((s) => s.set.join(' '))).toEqual(expect.arrayContaining([expect.stringMatching(/optim\.offload=host/)]));
  });
});
