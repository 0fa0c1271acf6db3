/**
 * Config paths that change what a step computes, each through the Trainer (or runTraining, the
 * CLI's body): gradient accumulation, clipping off, weight-decay exclusion, the LR and aux
 * schedules, the expert capacity factor, and the Switch aux convention. Every expected value is
 * computed here from the config, not by calling the code under test.
 *
 * Tolerances are ~10x the measured error (TEST_MEASURE=<file>, test/reference/compare.ts, on
 * lavapipe; these runs have fixed seeds, so each measurement is the same on every run).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { parseConfig, type TrainConfig } from '../../src/train/config.ts';
import type { Batch } from '../../src/train/step/batch.ts';
import type { StepMetrics } from '../../src/train/step/trainer.ts';
import { runTraining } from '../../src/train/run/run.ts';
import { thisTarget } from '../../src/train/plan/targets.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, toF32 } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';
import { tinyConfig } from './cli-helpers.ts';
import { setupTrainer } from './trainer-setup.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

type Setup = Awaited<ReturnType<typeof setupTrainer>>;

/** tinyConfig with nested overrides merged section by section. */
function config(over: Record<string, Record<string, unknown>>): TrainConfig {
  const base = tinyConfig();
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) merged[k] = { ...(base[k] as object), ...v };
  return parseConfig(merged);
}

/** Rows [from, from + n) of a batch (windows are rows). */
function rows(b: Batch, from: number, n: number): Batch {
  const T = b.T;
  return {
    inputs: b.inputs.slice(from * T, (from + n) * T),
    labels: b.labels.slice(from * T, (from + n) * T),
    mask: b.mask.slice(from * T, (from + n) * T),
    B: n,
    T,
  };
}

async function read(s: Setup, what: 'data' | 'm' | 'v'): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const p of s.model.params) out.set(p.name, await (what === 'data' ? p.data : s.opt.state.get(p)![what]).readF32());
  return out;
}

function norm(ts: Iterable<Float32Array>): number {
  let s = 0;
  for (const t of ts) for (const v of t) s += v * v;
  return Math.sqrt(s);
}

describe('schedule.accumulation', () => {
  it('2 micro-batches of 4 give the update of one micro-batch of 8, over two steps', async () => {
    // The aux loss is not linear in the batch (a product of per-batch means), so it is off here;
    // the Huber mean (every window has the same mask count) and the z-loss are.
    const [loss, optim] = [{ auxFactor: 0 }, { eps: 1e-6 }];
    const acc = await setupTrainer(rt, config({ schedule: { microBatch: 4, accumulation: 2 }, loss, optim }));
    const one = await setupTrainer(rt, config({ schedule: { microBatch: 8, accumulation: 1 }, loss, optim }));
    for (let step = 1; step <= 2; step++) {
      const b8 = acc.data.train.nextBatch(8);
      one.data.train.nextBatch(8); // keep the two loaders in step (same seed, same order)
      const a = await acc.trainer.step(step, [rows(b8, 0, 4), rows(b8, 4, 4)]);
      const o = await one.trainer.step(step, [b8]);
      expect([a.microSteps, a.microStep, o.microSteps]).toEqual([2, 2 * step, 1]);
      expect([a.skipped, o.skipped]).toEqual([false, false]);
      // Measured worst 1.7e-7 relative (losses and gradient norm); bound 2e-6.
      expectClose([a.loss, a.lossMain, a.z, a.gradNorm], [o.loss, o.lossMain, o.z, o.gradNorm], { rtol: 2e-6, what: `step ${step} loss, main, z, grad norm` });
      // m = beta1 m + (1 - beta1) g: the mean gradient itself (an accumulation that summed the
      // micro-steps would double it: tried, this fails).
      // Measured worst 4.2e-7 of each tensor's largest |m| (f32 sums in another order); bound 5e-6.
      const [ma, mo] = [await read(acc, 'm'), await read(one, 'm')];
      for (const [name, m] of mo) expectClose(ma.get(name)!, m, { rtol: 5e-6, relativeToMax: true, what: `step ${step} ${name}.exp_avg` });
      // The weights, measured worst 1.1e-6 of the largest |p|; bound 1.5e-5. With eps 1e-6 instead
      // of 1e-8: near |g| ~ eps Adam's g / (|g| + eps) amplifies the gradient's rounding by
      // lr / (4 eps), and the key biases have entries there (3e-5 seen at eps 1e-8): that is
      // Adam's conditioning, not accumulation's, and m above is checked at any eps.
      const [pa, po] = [await read(acc, 'data'), await read(one, 'data')];
      for (const [name, p] of po) expectClose(pa.get(name)!, p, { rtol: 1.5e-5, relativeToMax: true, what: `step ${step} ${name}` });
    }
    acc.dispose();
    one.dispose();
  });
});

describe('optim.clipNorm', () => {
  it('0 leaves the gradient untouched while still measuring its norm; a small clipNorm scales it', async () => {
    const run = async (clipNorm: number) => {
      const s = await setupTrainer(rt, config({ optim: { clipNorm } }));
      const m = await s.trainer.step(1, [s.data.train.nextBatch(4)]);
      const exp = await read(s, 'm');
      s.dispose();
      return { m, exp };
    };
    const off = await run(0);
    const huge = await run(1e30); // a limit no norm reaches: coefficient exactly 1
    expect(off.m.gradNorm).toBeGreaterThan(0);
    expect([off.m.clipCoef, off.m.clippedFraction, off.m.gradNormPostClip]).toEqual([1, 0, off.m.gradNorm]);
    for (const [name, m] of huge.exp)
      expect(Buffer.from(off.exp.get(name)!.buffer).equals(Buffer.from(m.buffer)), `${name}.exp_avg with clipNorm 0 vs no-op clip`).toBe(true);
    // The norm is measured: m = (1 - beta1) g after step 1, so |m| / (1 - beta1) is |g|.
    // Measured 2.5e-8 relative (f32 sums of squares in another order); bound 3e-7.
    expectClose([norm(off.exp.values()) / (1 - 0.9)], [off.m.gradNorm], { rtol: 3e-7, what: 'grad norm from exp_avg' });

    // The same gradient clipped to a quarter of its norm: the path clipNorm 0 skips is live.
    // The coefficient is PyTorch's maxNorm / (norm + 1e-6) (shaders/adamw.wgsl).
    const n = off.m.gradNorm;
    const coef = n / 4 / (n + 1e-6);
    const quarter = await run(n / 4);
    // Measured worst 4.2e-8 (coefficient) and 1.2e-7 (exp_avg) relative; bound 1.5e-6.
    expectClose([quarter.m.clipCoef, quarter.m.clippedFraction, quarter.m.gradNormPostClip], [coef, 1 - coef, n * coef], {
      rtol: 1.5e-6,
      what: 'clip to a quarter',
    });
    for (const [name, m] of off.exp)
      expectClose(
        quarter.exp.get(name)!,
        Float64Array.from(m, (v) => v * coef),
        { rtol: 1.5e-6, relativeToMax: true, what: `${name}.exp_avg clipped to a quarter` },
      );
  });
});

describe('optim.weightDecay', () => {
  it('decays every weight by lr * wd * p and no norm or bias', async () => {
    const wd = 0.5;
    const run = async (weightDecay: number) => {
      const s = await setupTrainer(rt, config({ optim: { weightDecay }, schedule: { warmupSteps: 0 } }));
      // Biases start at 0 and norms at 1, where decay would be invisible or uniform: give every
      // norm and bias the same random values in both runs first.
      const rng = new Rng(11);
      for (const p of s.model.params) if (!p.decay) rt.write(p.data, Float32Array.from(toF32(rng.uniformArray(p.data.size, -1, 1))));
      const p0 = await read(s, 'data');
      const m = await s.trainer.step(1, [s.data.train.nextBatch(4)]);
      const p1 = await read(s, 'data');
      const flags = new Map(s.model.params.map((p) => [p.name, p.decay]));
      s.dispose();
      return { m, p0, p1, flags };
    };
    const [plain, decayed] = [await run(0), await run(wd)];
    // Which parameters are excluded: exactly the norms and the biases.
    for (const [name, decay] of plain.flags) expect(decay, name).toBe(!/(norm\.weight|\.bias)$/.test(name));
    expect([...plain.flags.values()].filter((d) => !d).length).toBeGreaterThan(4);
    const lr = plain.m.lr;
    expect(decayed.m.lr).toBe(lr);
    for (const [name, decay] of plain.flags) {
      const [a, b, p0] = [plain.p1.get(name)!, decayed.p1.get(name)!, plain.p0.get(name)!];
      if (!decay) {
        expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `${name} (no decay) changed with weightDecay ${wd}`).toBe(true);
        continue;
      }
      // PyTorch AdamW: p <- p (1 - lr wd) - lr u, so the two runs differ by lr wd p0. The
      // difference of two f32 weights ~|p| carries ~6e-8 |p| of rounding, against a difference
      // of lr wd |p| = 1.5e-3 |p|: measured worst 6.8e-5 relative to the largest; bound 7e-4.
      expectClose(
        Float64Array.from(b, (v, i) => v - a[i]!),
        Float64Array.from(p0, (v) => -lr * wd * v),
        { rtol: 7e-4, relativeToMax: true, what: `${name} decay` },
      );
    }
  });
});

/** Train-step metrics of an in-process run (runTraining is what train.js runs). */
async function trainRun(over: Record<string, Record<string, unknown>>): Promise<(StepMetrics & { kind: string })[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-paths-'));
  const cfg = config({ ...over, logging: { dir, progress: 'none' }, checkpoint: { every: 0, keep: 1 } });
  await runTraining(cfg, { resume: false, target: thisTarget(rt.caps), cwd: '/', budgetBytes: undefined });
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepMetrics & { kind: string })
    .filter((m) => m.kind === 'train');
}

describe('LR and aux schedules (schedule.*, optim.minLrRatio, loss.aux*)', () => {
  it('linear warmup then cosine to minLrRatio, and the aux ramp, as their formulas', async () => {
    const [lr, W, S, floor] = [2e-3, 3, 9, 0.25];
    const ms = await trainRun({
      optim: { lr, minLrRatio: floor },
      schedule: { steps: S, warmupSteps: W, decay: 'cosine' },
      loss: { auxFactor: 0.04, auxStart: 0.01, auxWarmupSteps: 4 },
    });
    expect(ms.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // float64 on both sides, the same formula in another order: measured 0; bound 1e-12.
    const want = ms.map(({ step: t }) => (t <= W ? (lr * t) / W : lr * floor + (lr - lr * floor) * 0.5 * (1 + Math.cos((Math.PI * (t - W)) / (S - W)))));
    expectClose(
      ms.map((m) => m.lr),
      want,
      { rtol: 1e-12, what: 'lr per step' },
    );
    // Literal checkpoints of the curve: the peak at the end of warmup, half way, the floor.
    expect([ms[2]!.lr, ms[5]!.lr, ms[8]!.lr].map((v) => v.toPrecision(12))).toEqual([2e-3, (2e-3 + 5e-4) / 2, 5e-4].map((v) => v.toPrecision(12)));
    const aux = ms.map(({ step: t }) => (t >= 4 ? 0.04 : 0.01 + ((0.04 - 0.01) * t) / 4));
    expectClose(
      ms.map((m) => m.auxFactor),
      aux,
      { rtol: 1e-12, what: 'aux factor per step' },
    );
  });

  it('decay "constant" holds lr after the warmup; warmup 0 starts the cosine at step 1', async () => {
    const c = await trainRun({ optim: { lr: 1e-3 }, schedule: { steps: 5, warmupSteps: 2, decay: 'constant' } });
    expect(c.map((m) => m.lr)).toEqual([5e-4, 1e-3, 1e-3, 1e-3, 1e-3]);
    const S = 4;
    const n = await trainRun({ optim: { lr: 1e-3, minLrRatio: 0 }, schedule: { steps: S, warmupSteps: 0, decay: 'cosine' } });
    expectClose(
      n.map((m) => m.lr),
      [1, 2, 3, 4].map((t) => 1e-3 * 0.5 * (1 + Math.cos((Math.PI * t) / S))),
      { rtol: 1e-12, atol: 1e-18, what: 'cosine from step 1' },
    );
  });

  it('the scheduled lr is the one AdamW applies: the first update moves each norm weight by lr', async () => {
    // AdamW's first step is lr * g / (|g| + eps) per element (bias-corrected m / sqrt(v)); with no
    // decay on norms, max |p1 - p0| over a norm weight is lr. warmupSteps 4: step 1 runs at lr / 4.
    const s = await setupTrainer(rt, config({ optim: { lr: 4e-3 }, schedule: { warmupSteps: 4 } }));
    const p0 = await read(s, 'data');
    const m = await s.trainer.step(1, [s.data.train.nextBatch(4)]);
    const p1 = await read(s, 'data');
    expect(m.lr).toBe(1e-3);
    for (const p of s.model.params.filter((q) => q.group === 'norm')) {
      const a = p0.get(p.name)!;
      const step = Math.max(...p1.get(p.name)!.map((v, i) => Math.abs(v - a[i]!)));
      // Weights ~1 hold a 1e-3 step to ~6e-8 / 1e-3 = 6e-5, and eps / |g| adds to it where the
      // largest |g| is small: measured worst 1.3e-4 relative; bound 1.5e-3 (a missed warmup is 4x off).
      expectClose([step], [m.lr], { rtol: 1.5e-3, what: `${p.name}: largest first update` });
    }
    s.dispose();
  });
});

describe('model.capacityFactor', () => {
  /** One step's metrics of a tiny model with this capacity factor, same init and batch each time. */
  const step = async (capacityFactor: number | null, auxConvention: 'pooled' | 'switch' = 'pooled') => {
    const s = await setupTrainer(rt, config({ model: { capacityFactor }, loss: { auxConvention } }));
    const b = s.data.train.nextBatch(4);
    const m = await s.trainer.step(1, [b]);
    // The experts' gradient (exp_avg after step 1 is 0.1 g): dropped pairs send them none.
    const exp = await read(s, 'm');
    const expertGrad = norm(s.model.params.filter((p) => p.group === 'experts').map((p) => exp.get(p.name)!));
    s.dispose();
    return { m, expertGrad, N: b.B * b.T, E: s.model.cfg.experts, k: s.model.cfg.topK };
  };

  it('drops the pairs over capacity ceil(cf N k / E) and counts them per layer', async () => {
    const dropless = await step(null);
    const tight = await step(0.5);
    const { N, E, k } = tight;
    const C = Math.ceil((0.5 * N * k) / E);
    // Routing is decided before capacity is applied: the same picks as dropless, then dropped.
    for (const [li, l] of tight.m.routing.entries()) {
      const counts = l.load!.map((f) => Math.round(f * N * k));
      expect(
        counts.reduce((a, b) => a + b, 0),
        `layer ${li} picks`,
      ).toBe(N * k);
      const want = counts.reduce((a, c) => a + Math.max(0, c - C), 0);
      expect(want, 'capacity 0.5 must drop something').toBeGreaterThan(0);
      expect(l.dropped, `layer ${li} dropped`).toBe(want);
      expect(dropless.m.routing[li]!.dropped).toBe(0);
    }
    // The dropped pairs really leave the experts (their gradient shrinks), not only the count.
    const kept = tight.m.routing.reduce((a, l) => a + (N * k - l.dropped!), 0) / (tight.m.routing.length * N * k);
    expect(kept).toBeLessThan(0.8);
    expect(tight.expertGrad / dropless.expertGrad).toBeLessThan(0.9);
    // cf = E / k gives C >= N, more than any expert can be picked: nothing dropped, and the same
    // kernels as dropless with a limit never reached, so the same bits (measured: identical).
    const roomy = await step(E / k);
    expect(roomy.m.routing.map((l) => l.dropped)).toEqual(roomy.m.routing.map(() => 0));
    expect([roomy.m.loss, roomy.m.gradNorm, roomy.expertGrad]).toEqual([dropless.m.loss, dropless.m.gradNorm, dropless.expertGrad]);
  });
});

describe('loss.auxConvention', () => {
  it('"switch" trains on the mean of the per-layer Switch losses; "pooled" on the HF pooled loss', async () => {
    const s = await setupTrainer(rt, config({ loss: { auxConvention: 'switch' } }));
    const m = await s.trainer.step(1, [s.data.train.nextBatch(4)]);
    s.dispose();
    // The per-layer Switch losses come from a separate kernel call in the trainer's metrics; a
    // training aux that summed the layers would read 2x. Measured 5.8e-8 relative; bound 6e-7.
    const mean = m.routing.reduce((a, l) => a + l.switchLoss!, 0) / m.routing.length;
    expect(m.routing.length).toBe(2);
    expectClose([m.aux], [mean], { rtol: 6e-7, what: 'switch aux vs mean of per-layer switch losses' });
    const p = await setupTrainer(rt, config({ loss: { auxConvention: 'pooled' } }));
    const mp = await p.trainer.step(1, [p.data.train.nextBatch(4)]);
    p.dispose();
    // Pooled balances at k = 2, Switch at 1: near-uniform routing reads about twice as much.
    expect(mp.aux / m.aux).toBeGreaterThan(1.5);
  });
});
