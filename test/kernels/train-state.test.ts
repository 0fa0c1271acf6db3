/**
 * GPU-resident training state (kernels/train-state.ts): the AdamW scalars from the GPU step count,
 * the loss seed, and step_end's step count and loss-scale logic against the reference model
 * (test/reference/train-state-ref.ts).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { adamw } from '../../src/kernels/adamw.ts';
import { adamScalars, createTrainState, lossSeed, SCALE_EVENTS, stepEnd, STATE } from '../../src/kernels/train-state.ts';
import { LossScaler } from '../../src/optim/loss-scale.ts';
import { lossScaleUpdate } from '../reference/train-state-ref.ts';
import { testRuntime } from '../reference/gpu.ts';
import { toF32, seeded } from '../reference/rng.ts';
import { expectClose } from '../reference/compare.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

describe('train state', () => {
  it('adamScalars equal the float64 bias corrections for t = 1 .. 10^5', async () => {
    for (const [b1, b2] of [
      [0.9, 0.999],
      [0.9, 0.95],
    ] as const) {
      for (const steps of [0, 1, 4, 99, 9999, 99999]) {
        const state = createTrainState(rt, { adamStep: steps, lossScale: 1, goodSteps: 0 });
        const s = adamScalars(state, { lr: 3e-4, beta1: b1, beta2: b2 });
        const t = steps + 1;
        // f32 exp/log of t·ln(beta) (expm1 via Kahan's form): a few ulp, so 2e-6 relative. Without
        // expm1, 1 - 0.999^1 alone would be ~6e-5 off.
        expectClose(await s.readF32(), [3e-4 / (1 - b1 ** t), Math.sqrt(1 - b2 ** t)], { rtol: 2e-6, what: `b=${b1}/${b2} t=${t}` });
        state.dispose();
        s.dispose();
      }
    }
  });

  it('AdamW with the GPU step count matches the host-side step over 5 steps', async () => {
    const { seed, rng } = seeded();
    const n = 777;
    const p0 = toF32(rng.normalArray(n));
    const [pa, pb] = [rt.upload(Float32Array.from(p0), [n]), rt.upload(Float32Array.from(p0), [n])];
    const [ma, va, mb, vb] = [rt.zeros([n]), rt.zeros([n]), rt.zeros([n]), rt.zeros([n])];
    const g = rt.empty([n]);
    const state = createTrainState(rt, { adamStep: 0, lossScale: 1, goodSteps: 0 });
    const zero = rt.zeros([1]);
    for (let t = 1; t <= 5; t++) {
      rt.write(g, Float32Array.from(toF32(rng.normalArray(n, 0.1))));
      const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: t };
      adamw(pa, g, ma, va, hyper);
      const scal = adamScalars(state, hyper);
      adamw(pb, g, mb, vb, hyper, { scalars: scal });
      stepEnd(state, zero, zero, null); // adamStep += 1
      scal.dispose();
    }
    expect((await state.readF32())[STATE.adamStep]).toBe(5);
    expectClose(await pb.readF32(), await pa.readF32(), { rtol: 1e-6, relativeToMax: true, seed, what: 'p' });
    for (const t of [pa, pb, ma, va, mb, vb, g, state, zero]) t.dispose();
  });

  it('stepEnd follows the loss-scale reference over a random sequence of flags; lossSeed = scale / accumulation', async () => {
    const { seed, rng } = seeded();
    const opts = { initialScale: 1024, growthInterval: 3, minScale: 128, maxScale: 4096 };
    const ref = new LossScaler(opts);
    let refStep = 0;
    const state = createTrainState(rt, { adamStep: 0, lossScale: opts.initialScale, goodSteps: 0 });
    const [guard, norm] = [rt.zeros([1]), rt.zeros([1])];
    for (let i = 0; i < 60; i++) {
      const r = rng.uniform(0, 1);
      // Mostly clean steps (so the scale grows to its cap), some overflows, some forward NaNs.
      const fwd = r < 0.1 ? (r < 0.05 ? NaN : 2) : 0;
      const gradBad = r > 0.75 ? 1 : 0;
      rt.write(guard, [fwd]);
      rt.write(norm, [gradBad]);
      const seedT = lossSeed(state, 4);
      stepEnd(state, guard, norm, opts);
      const [st, sd] = (await rt.readMany([state, seedT])) as Float32Array[];
      const scaleBefore = ref.scale;
      const event = lossScaleUpdate(ref, gradBad !== 0, fwd !== 0);
      if (fwd === 0 && gradBad === 0) refStep++;
      expect(sd![0], `seed at step ${i}`).toBe(scaleBefore / 4); // powers of two: exact
      expect(
        [st![STATE.adamStep], st![STATE.lossScale], st![STATE.goodSteps], SCALE_EVENTS[st![STATE.event]!]],
        `step ${i} (seed ${seed}) fwd ${fwd} grad ${gradBad}`,
      ).toEqual([refStep, ref.scale, ref.goodSteps, event]);
      seedT.dispose();
    }
    for (const t of [state, guard, norm]) t.dispose();
  });
});
