/**
 * The planner against the real engine on lavapipe: one real training step (forward, forecastLoss,
 * backward, as test/autograd/graph.test.ts runs it) with AdamW-sized m/v resident, and the pool's
 * measured peak compared with the planned total peak.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { Runtime } from '../../src/kernels/runtime.ts';
import type { Tensor } from '../../src/kernels/tensor.ts';
import { Graph } from '../../src/autograd/graph.ts';
import { Var } from '../../src/autograd/variable.ts';
import { zeroGrad } from '../../src/autograd/grad.ts';
import { preset, type ModelConfig } from '../../src/model/config.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { classificationLoss, forecastLoss } from '../../src/model/losses.ts';
import { horizonTargets } from '../../src/kernels/loss.ts';
import { ropeTable } from '../../src/kernels/rope.ts';
import { planMemory } from '../../src/train/planner.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, freshSeed } from '../reference/rng.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await testRuntime();
});

interface Measured {
  /** Live bytes once the forward and the losses are recorded (before the seed upload). */
  forwardEnd: number;
  peak: number;
  before: number;
}

/** One step exactly as graph.test.ts runs it; returns the pool's live/peak bytes around it. */
async function step(model: TimeMoeModel, cfg: ModelConfig, B: number, T: number, rng: Rng, auxConvention: 'pooled' | 'switch', gradients: 'resident' | 'freed' = 'resident', activations: 'f32' | 'f16' = 'f32'): Promise<Measured> {
  await rt.sync();
  const before = rt.memory().liveBytes;
  rt.pool.resetPeak();
  const N = B * T;
  const series = Float32Array.from({ length: B * (T + 1) }, () => rng.normal());
  const inputs = new Float32Array(N);
  const labels = new Float32Array(N);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = series[b * (T + 1) + t]!;
      labels[b * T + t] = series[b * (T + 1) + t + 1]!;
    }
  const g = new Graph();
  const x = g.adopt(new Var(rt.upload(inputs, [N, 1])));
  const lab = rt.upload(labels, [B, T]);
  const msk = rt.upload(new Float32Array(N).fill(1), [B, T]);
  const targets = cfg.horizons.map((h) => {
    const t = horizonTargets(lab, msk, h);
    return { target: t.target.reshape([N, h]), mask: t.mask.reshape([N, h]) };
  });
  const terms = g.run(() =>
    forecastLoss(model.forward(x, { batch: B, seqLen: T }, { activations }), targets, { auxFactor: 0.02, auxConvention, zCoef: 1e-3, experts: cfg.experts, topK: cfg.topK, huberDelta: 2 }),
  );
  g.keep(terms.total);
  const forwardEnd = rt.memory().liveBytes;
  g.backward(terms.total, rt.upload([1], [1]));
  const loss = (await terms.total.data.readF32())[0]!;
  expect(Number.isFinite(loss)).toBe(true);
  const peak = rt.memory().peakLiveBytes;
  g.dispose();
  for (const t of targets) {
    t.target.dispose();
    t.mask.dispose();
  }
  lab.dispose();
  msk.dispose();
  zeroGrad(model.params, gradients === 'freed');
  await rt.sync();
  return { forwardEnd, peak, before };
}

const CASES: { name: string; cfg: ModelConfig; B: number; T: number; aux: 'pooled' | 'switch'; phase: 'forward' | 'backward'; gradients?: 'freed'; activations?: 'f16' }[] = [
  { name: 'small-moe (preset dims)', cfg: preset('small-moe'), B: 4, T: 64, aux: 'pooled', phase: 'forward' },
  // What the Trainer does: gradients freed after each update.
  { name: 'small-moe, gradients freed between steps (the Trainer)', cfg: preset('small-moe'), B: 4, T: 64, aux: 'pooled', phase: 'forward', gradients: 'freed' },
  { name: 'small-moe, f16 activations, gradients freed', cfg: preset('small-moe'), B: 4, T: 64, aux: 'pooled', phase: 'forward', gradients: 'freed', activations: 'f16' },
  { name: 'small-moe, smaller dims, switch aux', cfg: preset('small-moe', { hidden: 32, heads: 2, experts: 8, topK: 2, moeIntermediate: 48, sharedIntermediate: 64, horizons: [1, 4, 16] }), B: 3, T: 50, aux: 'switch', phase: 'forward' },
  { name: 'small-moe without shared expert', cfg: preset('small-moe', { sharedIntermediate: 0, layers: 3 }), B: 2, T: 96, aux: 'pooled', phase: 'forward' },
  // A wide shared expert on one layer: its backward's [N, 16d] gradients outgrow what the forward held.
  {
    name: 'one layer, wide shared expert (peak in backward)',
    cfg: preset('small-moe', { hidden: 32, heads: 2, layers: 1, moeIntermediate: 32, sharedIntermediate: 512, horizons: [1, 8] }),
    B: 2,
    T: 64,
    aux: 'pooled',
    phase: 'backward',
  },
  {
    name: 'one layer, wide shared expert, f16 activations (peak in backward)',
    cfg: preset('small-moe', { hidden: 32, heads: 2, layers: 1, moeIntermediate: 32, sharedIntermediate: 512, horizons: [1, 8] }),
    B: 2,
    T: 64,
    aux: 'pooled',
    phase: 'backward',
    activations: 'f16',
  },
];

describe('planner accuracy on lavapipe', () => {
  it.each(CASES)('planned peak matches the pool (within 10 percent): $name', async ({ cfg, B, T, aux, phase, gradients: g, activations: act }) => {
    const activations: 'f32' | 'f16' = act ?? 'f32';
    const gradients: 'resident' | 'freed' = g ?? 'resident';
    const seed = freshSeed();
    const rng = new Rng(seed);
    const model = new TimeMoeModel(rt, cfg, seed);
    // Resident AdamW state, as an optimizer holds it (one m and one v per parameter).
    const state: Tensor[] = model.params.flatMap((p) => [rt.zeros(p.shape, 'f32', 'adamw m'), rt.zeros(p.shape, 'f32', 'adamw v')]);
    // Warm-up step: allocates the parameter gradients (kept from then on) and the RoPE table.
    await step(model, cfg, B, T, rng, aux, gradients, activations);
    const m = await step(model, cfg, B, T, rng, aux, gradients, activations);

    const plan = planMemory(cfg, { microBatch: B, contextLength: T, dtype: activations, optimizer: 'adamw', recompute: false, auxConvention: aux, gradients });
    // The RoPE table is cached per runtime: an earlier case with a longer context may have grown it
    // past what a fresh process (the plan) holds. Count the table this runtime really has.
    const plannedTable = plan.inputs.items.find((i) => i.name.startsWith('RoPE'))!.bytes;
    const tableDelta = ropeTable(rt, T, cfg.hidden / cfg.heads, cfg.ropeTheta).buffer.size - plannedTable;
    const resident = plan.parameters.allocatedBytes + (gradients === 'resident' ? plan.gradients.allocatedBytes : 0) + plan.optimizer.allocatedBytes + plannedTable + tableDelta;
    const plannedPeak = plan.peak.bytes + tableDelta;
    const plannedForwardEnd = resident - plannedTable + plan.inputs.bytes + plan.activations.forwardEndBytes;
    const rel = (a: number, b: number) => Math.abs(a - b) / b;
    console.log(
      `[planner] ${cfg.preset} d=${cfg.hidden} L=${cfg.layers} E=${cfg.experts} B=${B} T=${T} (seed ${seed}): ` +
        `measured peak ${m.peak} B, planned ${plannedPeak} B (${(100 * (plannedPeak / m.peak - 1)).toFixed(2)}%, phase ${plan.peak.phase}); ` +
        `forward end measured ${m.forwardEnd}, planned ${plannedForwardEnd}; resident measured ${m.before}, planned ${resident}`,
    );
    // Between steps only weights, gradients, m/v and the cached RoPE table are live.
    expect(m.before).toBe(resident);
    expect(rel(plannedForwardEnd, m.forwardEnd), 'forward-end live bytes').toBeLessThan(0.1);
    expect(rel(plannedPeak, m.peak), `peak: measured ${m.peak}, planned ${plannedPeak}`).toBeLessThan(0.1);
    expect(plan.peak.phase).toBe(phase);

    for (const t of state) t.dispose();
    zeroGrad(model.params, true);
    model.dispose();
  });

  it('classifier (mean pool + cross-entropy): planned peak matches the pool', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const cfg = preset('small-moe', { task: 'classify', numClasses: 7 });
    const B = 4;
    const T = 48;
    const N = B * T;
    const model = new TimeMoeModel(rt, cfg, seed);
    const state: Tensor[] = model.params.flatMap((p) => [rt.zeros(p.shape, 'f32', 'adamw m'), rt.zeros(p.shape, 'f32', 'adamw v')]);
    const peaks: number[] = [];
    for (let i = 0; i < 2; i++) {
      await rt.sync();
      rt.pool.resetPeak();
      const g = new Graph();
      const x = g.adopt(new Var(rt.upload(Float32Array.from({ length: N }, () => rng.normal()), [N, 1])));
      const labels = rt.upload(Int32Array.from({ length: B }, (_, b) => b % 7), [B], 'i32');
      const terms = g.run(() => classificationLoss(model.forward(x, { batch: B, seqLen: T }), labels, { auxFactor: 0.02, auxConvention: 'pooled', zCoef: 1e-3, experts: cfg.experts, topK: cfg.topK, huberDelta: 2 }));
      g.keep(terms.total);
      g.backward(terms.total, rt.upload([1], [1]));
      expect(Number.isFinite((await terms.total.data.readF32())[0]!)).toBe(true);
      peaks.push(rt.memory().peakLiveBytes);
      g.dispose();
      labels.dispose();
      zeroGrad(model.params);
    }
    const plan = planMemory(cfg, { microBatch: B, contextLength: T, dtype: 'f32', optimizer: 'adamw', recompute: false });
    const plannedTable = plan.inputs.items.find((i) => i.name.startsWith('RoPE'))!.bytes;
    const planned = plan.peak.bytes - plannedTable + ropeTable(rt, T, cfg.hidden / cfg.heads, cfg.ropeTheta).buffer.size;
    console.log(`[planner] classifier B=${B} T=${T}: measured peak ${peaks[1]} B, planned ${planned} B (${(100 * (planned / peaks[1]! - 1)).toFixed(2)}%)`);
    expect(Math.abs(planned - peaks[1]!) / peaks[1]!).toBeLessThan(0.1);
    for (const t of state) t.dispose();
    zeroGrad(model.params, true);
    model.dispose();
  });
});
