/**
 * Activation recomputation: the same loss and the same gradients as storing every activation
 * (the re-run executes the same deterministic kernels on the same inputs), with a lower memory peak.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { Graph } from '../../src/autograd/graph.ts';
import { Var } from '../../src/autograd/variable.ts';
import { zeroGrad } from '../../src/autograd/grad.ts';
import { preset } from '../../src/model/config.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { stateDict } from '../../src/model/state-dict.ts';
import { taskLoss, uploadBatch } from '../../src/train/step/batch.ts';
import { testRuntime } from '../reference/gpu.ts';
import { seeded } from '../reference/rng.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

describe('activation recomputation', () => {
  it('gives bit-identical loss and gradients with a lower peak', async () => {
    const { seed, rng } = seeded();
    const cfg = preset('small-moe', { hidden: 32, layers: 3, heads: 2, experts: 4, moeIntermediate: 32, sharedIntermediate: 64, horizons: [1, 4] });
    const model = new TimeMoeModel(rt, cfg, seed);
    const B = 4,
      T = 48,
      N = B * T;
    const series = Float32Array.from({ length: N + B }, () => rng.normal());
    const batch = { inputs: series.subarray(0, N), labels: series.subarray(1, N + 1), mask: new Float32Array(N).fill(1), B, T };
    const lossOpts = { auxFactor: 0.02, auxConvention: 'pooled' as const, zCoef: 1e-3, experts: 4, topK: 2, huberDelta: 2 };
    model.prepare(T);

    const run = async (recompute: boolean) => {
      await rt.sync();
      rt.resetPeak();
      const base = rt.memory().liveBytes;
      const g = new Graph();
      const dev = uploadBatch(rt, batch, model);
      const x = g.adopt(new Var(dev.inputs, false));
      const terms = g.run(() => taskLoss(model.forward(x, { batch: B, seqLen: T }, { recompute }), dev, lossOpts));
      g.keep(terms.total);
      g.backward(terms.total, rt.upload([1], [1]));
      const loss = (await terms.total.data.readF32())[0]!;
      const peak = rt.memory().peakLiveBytes - base;
      g.dispose();
      dev.dispose();
      const grads = await stateDict(model.params, 'grad');
      zeroGrad(model.params, true);
      await rt.sync();
      return { loss, grads, peak, leaked: rt.memory().liveBytes - base };
    };
    const plain = await run(false);
    const rec = await run(true);
    expect(rec.loss, `seed ${seed}`).toBe(plain.loss);
    for (const [name, g] of plain.grads) {
      const r = rec.grads.get(name)!.data;
      expect(
        Buffer.from(r.buffer, r.byteOffset, r.byteLength).equals(Buffer.from(g.data.buffer, g.data.byteOffset, g.data.byteLength)),
        `${name} (seed ${seed})`,
      ).toBe(true);
    }
    expect(rec.leaked).toBe(0);
    expect(plain.leaked).toBe(0);
    // 3 layers: the stored activations of all but ~one layer are gone at the peak.
    expect(rec.peak).toBeLessThan(0.7 * plain.peak);
    model.dispose();
  });
});
