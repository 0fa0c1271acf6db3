/** The memory planner without a GPU: parameter bytes, verdicts, suggestions, monotonicity, the table. */
import { describe, it, expect } from 'vitest';
import { countParameters, modelConfig, preset, type ModelConfig } from '../../src/model/config.ts';
import { GIB, parameterShapes, planMemory, planPeak, type RunOptions } from '../../src/train/planner.ts';
import { formatPlan } from '../../src/train/planner-format.ts';

const run = (o: Partial<RunOptions> = {}): RunOptions => ({ microBatch: 8, contextLength: 512, dtype: 'f32', optimizer: 'adamw', recompute: false, ...o });

describe('memory planner', () => {
  it('TimeMoE-50M: parameters, gradients and each AdamW state are 113,352,192 x 4 bytes', () => {
    const plan = planMemory(preset('timemoe-50m'), run());
    const bytes = 113_352_192 * 4;
    expect(plan.parameters.count).toBe(113_352_192);
    expect(plan.parameters.bytes).toBe(bytes);
    expect(plan.gradients.bytes).toBe(bytes);
    expect(plan.optimizer.bytes).toBe(2 * bytes); // m and v
    // Pool bytes: each tensor rounded up by at most 12.5% (sizeClass).
    expect(plan.parameters.allocatedBytes).toBeGreaterThanOrEqual(bytes);
    expect(plan.parameters.allocatedBytes).toBeLessThanOrEqual(bytes * 1.125);
    expect(plan.optimizer.allocatedBytes).toBe(2 * plan.parameters.allocatedBytes);
  });

  it('parameter shapes add up to countParameters for presets and a classifier', () => {
    const cfgs: ModelConfig[] = [
      preset('small-moe'),
      preset('timemoe-50m'),
      preset('timemoe-200m'),
      preset('small-moe', { sharedIntermediate: 0 }),
      preset('small-moe', { task: 'classify', numClasses: 7 }),
    ];
    for (const cfg of cfgs) {
      const n = parameterShapes(cfg).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
      expect(n, cfg.preset).toBe(countParameters(cfg).total);
    }
    expect(planMemory(preset('timemoe-200m'), run({ microBatch: 1 })).parameters.count).toBe(453_196_800);
  });

  it('a run that exceeds 24 GiB does not fit, and every suggestion, applied, fits', () => {
    const cfg = preset('timemoe-200m');
    const r = run({ microBatch: 32, contextLength: 2048 });
    const plan = planMemory(cfg, r);
    expect(plan.fits).toBe(false);
    expect(plan.peak.bytes).toBeGreaterThan(24 * GIB);
    const fitting = plan.suggestions.filter((s) => s.peakBytes !== null);
    expect(fitting.map((s) => s.knob)).toEqual(expect.arrayContaining(['microBatch', 'contextLength']));
    for (const s of fitting) {
      const applied = planMemory(cfg, { ...r, ...s.apply });
      expect(applied.fits, s.text).toBe(true);
      expect(applied.peak.bytes).toBe(s.peakBytes);
    }
    const mb = fitting.find((s) => s.knob === 'microBatch')!;
    expect(mb.text).toMatch(/^micro-batch 32 -> \d+ fits \(peak \d+\.\d GiB\)$/);
    // The micro-batch suggestion is the largest that fits: one more does not.
    expect(planMemory(cfg, { ...r, microBatch: Number(mb.to) + 1 }).fits).toBe(false);
    expect(plan.maxMicroBatch).toBe(Number(mb.to));
  });

  it('a model too large for any batch says so', () => {
    // ~2.9B parameters: weights + gradients + AdamW alone exceed 24 GiB.
    const cfg = modelConfig({ hidden: 1024, layers: 36, heads: 16, experts: 8, topK: 2, moeIntermediate: 2048, sharedIntermediate: 8192 });
    const plan = planMemory(cfg, run({ microBatch: 1, contextLength: 64 }));
    expect(plan.fits).toBe(false);
    expect(plan.maxMicroBatch).toBe(0);
    expect(plan.suggestions.some((s) => s.knob === 'none')).toBe(true);
  });

  it('peak grows monotonically with micro-batch and context length', () => {
    // Non-decreasing step to step (sizeClass can round neighbours, e.g. T=511 and 512, to the same
    // buffers), strictly increasing over a doubling.
    const check = (label: string, peaks: number[]) => {
      for (let i = 1; i < peaks.length; i++) expect(peaks[i], `${label} step ${i}`).toBeGreaterThanOrEqual(peaks[i - 1]!);
      expect(peaks[peaks.length - 1]).toBeGreaterThan(peaks[0]!);
    };
    for (const cfg of [preset('small-moe'), preset('timemoe-50m')]) {
      const mbs = Array.from({ length: 16 }, (_, i) => i + 1);
      const byMb = mbs.map((mb) => planPeak(cfg, run({ microBatch: mb, contextLength: 256 })));
      check(`${cfg.preset} micro-batch`, byMb);
      for (let i = 0; i + 1 < mbs.length; i++) if (mbs.includes(2 * mbs[i]!)) expect(byMb[2 * mbs[i]! - 1]).toBeGreaterThan(byMb[i]!);
      const Ts = [1, 7, 32, 64, 100, 256, 511, 512, 513, 1024, 2048];
      check(
        `${cfg.preset} context`,
        Ts.map((T) => planPeak(cfg, run({ microBatch: 2, contextLength: T }))),
      );
    }
  });

  it('recompute and f16 activations lower the peak; recompute keeps only layer inputs', () => {
    const cfg = preset('timemoe-50m');
    const base = planMemory(cfg, run({ microBatch: 16 }));
    const rc = planMemory(cfg, run({ microBatch: 16, recompute: true }));
    const f16 = planMemory(cfg, run({ microBatch: 16, dtype: 'f16' }));
    expect(rc.peak.bytes).toBeLessThan(base.peak.bytes * 0.5);
    expect(f16.peak.bytes).toBeLessThan(base.peak.bytes);
    expect(f16.activations.forwardEndBytes).toBeLessThan(base.activations.forwardEndBytes * 0.6);
    // With recompute a layer keeps its output (the next layer's input) and its routing for the losses.
    const kept = rc.activations.perLayer.items.filter((i) => i.saved).map((i) => i.name);
    expect(kept).toContain('residual after moe');
    expect(kept).not.toContain('expert hidden');
    expect(rc.peak.phase).toBe('backward');
    expect(rc.peak.breakdown.recomputedActivations).toBeGreaterThan(0);
    expect(rc.notes.join(' ')).toMatch(/schedule\.recompute.*rebuilt during backward/);
  });

  it('itemises one layer: attention, norms, router, dispatch, experts (N*k rows), shared expert, residual', () => {
    const cfg = preset('timemoe-50m');
    const plan = planMemory(cfg, run({ microBatch: 4, contextLength: 512 }));
    const N = 4 * 512;
    const items = plan.activations.perLayer.items;
    const get = (name: string) => items.find((i) => i.name === name)!;
    expect(new Set(items.map((i) => i.group))).toEqual(new Set(['norm', 'attention', 'router', 'dispatch', 'experts', 'shared', 'residual']));
    expect(get('attn q').bytes).toBe(N * 384 * 4);
    expect(get('attn lse').bytes).toBe(4 * 12 * 512 * 4);
    expect(get('expert hidden').bytes).toBe(N * 2 * 768 * 4);
    expect(get('shared hidden').bytes).toBe(N * 1536 * 4);
    expect(get('attn q (pre-RoPE)').saved).toBe(false);
    expect(get('router probs').saved).toBe(true);
    // Every decoder layer is alike.
    expect(plan.activations.layersBytes).toBe(plan.activations.perLayer.bytes * cfg.layers);
    // The peak's breakdown adds up.
    expect(Object.values(plan.peak.breakdown).reduce((a, b) => a + b, 0)).toBe(plan.peak.bytes);
  });

  it('formats a readable table with budget, verdict and suggestions', () => {
    const fits = formatPlan(planMemory(preset('timemoe-50m'), run()));
    expect(fits).toMatch(/Verdict: FITS/);
    expect(fits).toMatch(/24\.00 GiB - 512\.0 MiB reserve = 23\.50 GiB usable/);
    expect(fits).toMatch(/one decoder layer/);
    const tooBig = formatPlan(planMemory(preset('timemoe-200m'), run({ microBatch: 32, contextLength: 2048 })));
    expect(tooBig).toMatch(/DOES NOT FIT/);
    expect(tooBig).toMatch(/micro-batch 32 -> \d+ fits/);
  });

  it('prints the plans for small-moe, TimeMoE-50M and TimeMoE-200M on a 24 GiB budget', () => {
    const rows: string[] = [];
    for (const [name, mb, T] of [
      ['small-moe', 32, 512],
      ['timemoe-50m', 32, 512],
      ['timemoe-50m', 64, 2048],
      ['timemoe-200m', 8, 512],
      ['timemoe-200m', 32, 2048],
    ] as const) {
      const p = planMemory(preset(name), run({ microBatch: mb, contextLength: T }));
      const g = (b: number) => (b / GIB).toFixed(2);
      rows.push(
        `${name} mb=${mb} T=${T}: params ${g(p.parameters.allocatedBytes)} grads ${g(p.gradients.allocatedBytes)} adamw ${g(p.optimizer.allocatedBytes)} ` +
          `acts ${g(p.activations.forwardEndBytes)} (saved ${g(p.activations.savedBytes)}) peak ${g(p.peak.bytes)} GiB (${p.peak.phase}) ` +
          `${p.fits ? 'fits' : 'DOES NOT FIT'}; max mb ${p.maxMicroBatch}; ${p.suggestions.map((s) => s.text).join('; ')}`,
      );
    }
    console.log(rows.join('\n'));
    expect(rows).toHaveLength(5);
  });
});
