/** Autograd mechanics: accumulation, no-grad mode, and that memory is released on time. */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { Graph } from '../../src/autograd/graph.ts';
import { Var } from '../../src/autograd/variable.ts';
import { zeroGrad } from '../../src/autograd/grad.ts';
import { add, mulColumn, sigmoid, swiglu } from '../../src/autograd/ops/activation.ts';
import { linear } from '../../src/autograd/ops/linear.ts';
import { preset } from '../../src/model/config.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { taskLoss, uploadBatch } from '../../src/train/step/batch.ts';
import { testRuntime } from '../reference/gpu.ts';
import { seeded } from '../reference/rng.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const leaf = (data: number[], shape: number[], grad = true) => new Var(rt.upload(Float32Array.from(data), shape), grad);

describe('autograd graph', () => {
  it('accumulates gradients of a value used by several ops', async () => {
    // y = sigmoid(a) + a * s  (a used twice); dy/da = s' + s
    const a = leaf([0.5, -1, 2], [3, 1]);
    const s = leaf([3, 3, 3], [3, 1], false);
    const g = new Graph();
    const y = g.run(() => add(sigmoid(a), mulColumn(a, s)));
    g.backward(y, rt.upload([1, 1, 1], [3, 1]));
    const grad = await a.grad!.readF32();
    [0.5, -1, 2].forEach((x, i) => {
      const sg = 1 / (1 + Math.exp(-x));
      expect(grad[i]).toBeCloseTo(sg * (1 - sg) + 3, 5);
    });
    expect(s.grad).toBeNull();
    g.dispose();
    a.dispose();
    s.dispose();
  });

  it('accumulates into leaf gradients across backward passes (gradient accumulation)', async () => {
    const w = leaf([1, 2], [1, 2]);
    const x = leaf([3, 4], [1, 2], false);
    for (let i = 0; i < 3; i++) {
      const g = new Graph();
      const y = g.run(() => linear(x, w, null));
      g.backward(y, rt.upload([1], [1, 1]));
      g.dispose();
    }
    expect(Array.from(await w.grad!.readF32())).toEqual([9, 12]);
    zeroGrad([w]);
    expect(Array.from(await w.grad!.readF32())).toEqual([0, 0]);
    w.dispose();
    x.dispose();
  });

  it('records nothing in no-grad mode and frees everything at dispose', async () => {
    await rt.sync();
    const before = rt.memory().liveBytes;
    const a = leaf([1, 2, 3, 4], [2, 2]);
    const b = leaf([1, 1, 1, 1], [2, 2]);
    const g = new Graph(false);
    const y = g.run(() => swiglu(a, add(a, b)));
    expect(y.requiresGrad).toBe(false);
    expect(y.creator).toBeNull();
    const vals = await y.data.readF32();
    expect(vals[3]).toBeCloseTo((4 / (1 + Math.exp(-4))) * 5, 4);
    g.dispose();
    a.dispose();
    b.dispose();
    expect(rt.memory().liveBytes).toBe(before);
  });

  it('frees saved activations as soon as backward has used them', async () => {
    await rt.sync();
    const base = rt.memory().liveBytes;
    const x = leaf(
      Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i)),
      [64, 32],
      false,
    );
    const w = leaf(
      Array.from({ length: 32 * 32 }, (_, i) => Math.cos(i) * 0.1),
      [32, 32],
    );
    const g = new Graph();
    // A chain of 6 linears: 6 activations of 8 KiB saved for backward.
    const y = g.run(() => {
      let h = x;
      for (let i = 0; i < 6; i++) h = sigmoid(linear(h, w, null));
      return h;
    });
    const afterForward = rt.memory().liveBytes;
    expect(afterForward - base).toBeGreaterThan(12 * 64 * 32 * 4 - 1);
    g.backward(y, rt.upload(new Float32Array(64 * 32).fill(1), [64, 32]));
    // Only the leaves and w's gradient remain: every activation went back to the pool.
    expect(rt.memory().liveBytes - base).toBe(x.data.buffer.size + w.data.buffer.size + w.grad!.buffer.size);
    g.dispose();
    x.dispose();
    w.dispose();
    expect(rt.memory().liveBytes).toBe(base);
  });
});

describe('training-mode memory', () => {
  it('returns live bytes to the same value every step over 20 steps (forward, backward, zero-grad)', async () => {
    const { seed, rng } = seeded();
    const cfg = preset('small-moe', { hidden: 32, layers: 2, heads: 2, experts: 4, moeIntermediate: 16, sharedIntermediate: 32, horizons: [1, 4] });
    const model = new TimeMoeModel(rt, cfg, seed);
    const B = 2,
      T = 11,
      N = B * T;
    const live: number[] = [];
    for (let step = 0; step < 20; step++) {
      const series = Float32Array.from({ length: N + 1 }, () => rng.normal());
      const batch = { inputs: series.subarray(0, N), labels: series.subarray(1, N + 1), mask: new Float32Array(N).fill(1), B, T };
      const g = new Graph();
      const dev = uploadBatch(rt, batch, model);
      const x = g.adopt(new Var(dev.inputs));
      const terms = g.run(() =>
        taskLoss(model.forward(x, { batch: B, seqLen: T }), dev, { auxFactor: 0.02, auxConvention: 'pooled', zCoef: 1e-3, experts: 4, topK: 2, huberDelta: 2 }),
      );
      g.keep(terms.total);
      g.backward(terms.total, rt.upload([1], [1]));
      const loss = (await terms.total.data.readF32())[0]!;
      expect(Number.isFinite(loss), `step ${step} loss ${loss} (seed ${seed})`).toBe(true);
      g.dispose();
      dev.dispose();
      zeroGrad(model.params);
      await rt.sync();
      live.push(rt.memory().liveBytes);
    }
    // Step 0 allocates the parameter gradients; from then on nothing may grow.
    expect(new Set(live.slice(1)).size, `live bytes per step: ${live.join(', ')}`).toBe(1);
    zeroGrad(model.params, true);
    model.dispose();
  });
});
