/**
 * The whole tiny Time-MoE model against golden values from PyTorch (float64):
 * scripts/golden/make_golden.py wrote test/fixtures/golden-tiny.json.
 *
 * Tolerances: the fixture's own float32 replay (PyTorch in f32 on the same f32-rounded inputs)
 * differs from float64 by ~4e-7 on the losses and ~5e-7 (relative to the largest gradient) on the
 * gradients. Our kernels accumulate in a different order than PyTorch's CPU kernels, through 2
 * layers of attention and MoE, so we allow ~20x that floor: 1e-5 on loss terms and predictions,
 * 2e-5 relative to each tensor's largest gradient for parameter gradients. A wrong formula (a
 * missing scale, a transposed weight, renormalised top-k) moves these by 1e-2 or more.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { Graph } from '../../src/autograd/graph.ts';
import { Var } from '../../src/autograd/variable.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { forecastLoss, type HorizonTarget } from '../../src/model/losses.ts';
import { stateDict } from '../../src/model/state-dict.ts';
import { horizonTargets } from '../../src/kernels/loss.ts';
import { testRuntime } from '../reference/gpu.ts';
import { expectClose } from '../reference/compare.ts';
import { goldenModel, type GoldenConfig } from './golden-model.ts';

interface Fixture {
  config: GoldenConfig & {
    aux_factor: number;
    z_coef: number;
    batch: number;
    seq_len: number;
  };
  series: number[][];
  params: Record<string, { shape: number[]; data: number[] }>;
  outputs: {
    head_losses: number[];
    ar_loss: number;
    aux_loss: number;
    z_loss: number;
    total_loss: number;
    expert_fractions: number[][];
    predictions: Record<string, number[]>;
    router_top_idx: number[][];
  };
  grads: Record<string, number[]>;
}

const fx = JSON.parse(readFileSync(new URL('../fixtures/golden-tiny.json', import.meta.url), 'utf8')) as Fixture;
const c = fx.config;
const B = c.batch;
const T = c.seq_len;
const N = B * T;

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

function buildModel(): TimeMoeModel {
  return goldenModel(rt, c, fx.params);
}

describe('Time-MoE vs PyTorch golden values', () => {
  it('matches forward loss terms, routing, predictions and every parameter gradient', async () => {
    const model = buildModel();
    expect(model.parameterCount).toBe(Object.values(fx.params).reduce((a, p) => a + p.data.length, 0));

    const inputs = new Float32Array(N);
    const labels = new Float32Array(N);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        inputs[b * T + t] = fx.series[b]![t]!;
        labels[b * T + t] = fx.series[b]![t + 1]!;
      }
    const graph = new Graph(true);
    const x = graph.adopt(new Var(rt.upload(inputs, [N, 1], 'f32', 'inputs')));
    const labelsT = rt.upload(labels, [B, T], 'f32', 'labels');
    const maskT = rt.upload(new Float32Array(N).fill(1), [B, T], 'f32', 'loss mask');
    const targets: HorizonTarget[] = c.horizons.map((h) => {
      const { target, mask } = horizonTargets(labelsT, maskT, h);
      return { target: target.reshape([N, h]), mask: mask.reshape([N, h]) };
    });
    const { out, terms } = graph.run(() => {
      const out = model.forward(x, { batch: B, seqLen: T });
      const terms = forecastLoss(out, targets, {
        auxFactor: c.aux_factor,
        auxConvention: 'pooled',
        zCoef: c.z_coef,
        experts: c.experts,
        topK: c.top_k,
        huberDelta: 2,
      });
      return { out, terms };
    });
    for (const v of [terms.total, terms.main, terms.aux, terms.z, ...terms.headLosses, ...out.predictions]) graph.keep(v);
    const offsets = await Promise.all(out.routing.map((r) => r.offsets.read()));
    const idxs = await Promise.all(out.routing.map((r) => r.idx.read()));

    const seedGrad = rt.upload([1], [1], 'f32', 'dL/dL');
    graph.backward(terms.total, seedGrad);

    const scalar = async (v: Var) => (await v.data.readF32())[0]!;
    const o = fx.outputs;
    const tol = { rtol: 1e-5, atol: 1e-6 };
    expectClose([await scalar(terms.total)], [o.total_loss], { ...tol, what: 'total loss' });
    expectClose([await scalar(terms.main)], [o.ar_loss], { ...tol, what: 'ar loss' });
    expectClose([await scalar(terms.aux)], [o.aux_loss], { ...tol, what: 'aux loss' });
    expectClose([await scalar(terms.z)], [o.z_loss], { ...tol, what: 'z loss' });
    for (let n = 0; n < c.horizons.length; n++) {
      expectClose([await scalar(terms.headLosses[n]!)], [o.head_losses[n]!], { ...tol, what: `head ${n} loss` });
      expectClose(await out.predictions[n]!.data.readF32(), o.predictions[String(c.horizons[n])]!, {
        rtol: 1e-5,
        relativeToMax: true,
        what: `predictions h=${c.horizons[n]}`,
      });
    }
    for (let l = 0; l < c.layers; l++) {
      expect(Array.from(idxs[l]!), `layer ${l} top-k experts`).toEqual(o.router_top_idx[l]);
      const off = offsets[l]!;
      const fractions = Array.from({ length: c.experts }, (_, e) => (off[e + 1]! - off[e]!) / (N * c.top_k));
      expectClose(fractions, o.expert_fractions[l]!, { rtol: 1e-12, what: `layer ${l} expert fractions` });
    }

    const grads = await stateDict(model.params, 'grad');
    expect(new Set(grads.keys())).toEqual(new Set(Object.keys(fx.grads)));
    for (const [name, ref] of Object.entries(fx.grads)) {
      const g = grads.get(name)!.data;
      const allZero = ref.every((v) => v === 0);
      if (allZero)
        expect(
          Array.from(g).every((v) => v === 0),
          `${name}: expert without tokens must get exactly zero gradient`,
        ).toBe(true);
      else expectClose(g, ref, { rtol: 2e-5, relativeToMax: true, what: `grad ${name}` });
    }

    graph.dispose();
    for (const t of targets) {
      t.target.dispose();
      t.mask.dispose();
    }
    labelsT.dispose();
    maskT.dispose();
    model.dispose();
  });
});
