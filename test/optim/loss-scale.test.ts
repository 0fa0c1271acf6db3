/**
 * Dynamic loss scaling as src runs it: the GPU's step_end (src/kernels/train-state.ts,
 * shaders/train-state.wgsl) over fixed flag sequences whose outcome is written out by hand here,
 * and LossScaler (src/optim/loss-scale.ts), the host mirror that checkpoints save. The same
 * sequences pin down the reference model (test/reference/train-state-ref.ts) that
 * test/kernels/train-state.test.ts then holds the GPU to over random sequences.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { createTrainState, SCALE_EVENTS, stepEnd, STATE, type ScaleEvent } from '../../src/kernels/train-state.ts';
import { LossScaler, type LossScaleOptions } from '../../src/optim/loss-scale.ts';
import { lossScaleUpdate } from '../reference/train-state-ref.ts';
import { testRuntime } from '../reference/gpu.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

/** One step's flags: the gradient norm was not finite / a forward guard fired. */
type Flags = { overflow: boolean; forwardBad: boolean };
const clean: Flags = { overflow: false, forwardBad: false };
const over: Flags = { overflow: true, forwardBad: false };
const fwdNaN: Flags = { overflow: false, forwardBad: true };

interface After {
  scale: number;
  goodSteps: number;
  event: ScaleEvent;
  adamStep: number;
}

/** The flag sequence through the GPU's step_end, reading the state after every step. */
async function onGpu(o: Required<LossScaleOptions>, seq: readonly Flags[]): Promise<After[]> {
  const state = createTrainState(rt, { adamStep: 0, lossScale: o.initialScale, goodSteps: 0 });
  const [guard, norm] = [rt.zeros([1]), rt.zeros([1])];
  const out: After[] = [];
  for (const f of seq) {
    // A forward guard writes a count of bad values (or NaN); the clip kernel writes 1 for a bad norm.
    rt.write(guard, [f.forwardBad ? 3 : 0]);
    rt.write(norm, [f.overflow ? 1 : 0]);
    stepEnd(state, guard, norm, { minScale: o.minScale, maxScale: o.maxScale, growthInterval: o.growthInterval });
    const s = await state.readF32();
    out.push({ scale: s[STATE.lossScale]!, goodSteps: s[STATE.goodSteps]!, event: SCALE_EVENTS[s[STATE.event]!]!, adamStep: s[STATE.adamStep]! });
  }
  for (const t of [state, guard, norm]) t.dispose();
  return out;
}

/** The same sequence through the reference model on a LossScaler. */
function onReference(o: Required<LossScaleOptions>, seq: readonly Flags[]): Omit<After, 'adamStep'>[] {
  const s = new LossScaler(o);
  return seq.map((f) => {
    const event = lossScaleUpdate(s, f.overflow, f.forwardBad);
    return { scale: s.scale, goodSteps: s.goodSteps, event };
  });
}

async function expectSequence(o: Required<LossScaleOptions>, seq: readonly Flags[], want: [number, ScaleEvent][]) {
  const gpu = await onGpu(o, seq);
  expect(
    gpu.map((a) => [a.scale, a.event]),
    'GPU step_end: [scale, event] per step',
  ).toEqual(want);
  expect(
    onReference(o, seq).map((a) => [a.scale, a.event]),
    'reference model',
  ).toEqual(want);
  // The AdamW step counts only the steps that were applied.
  let applied = 0;
  expect(
    gpu.map((a) => a.adamStep),
    'adamStep',
  ).toEqual(seq.map((f) => (f.overflow || f.forwardBad ? applied : ++applied)));
  return gpu;
}

describe('loss scaling (GPU step_end and LossScaler)', () => {
  it('halves on overflow, stops at minScale (then "overflow-at-min"), grows after growthInterval clean steps, caps at maxScale', async () => {
    const o = { initialScale: 8, growthInterval: 3, minScale: 2, maxScale: 32 };
    const seq = [over, over, over, clean, clean, clean, ...Array<Flags>(9).fill(clean)];
    await expectSequence(o, seq, [
      [4, 'overflow'],
      [2, 'overflow'],
      // At the floor an overflow is no longer a range problem: the caller counts it as a bad step.
      [2, 'overflow-at-min'],
      [2, 'none'],
      [2, 'none'],
      [4, 'grew'],
      [4, 'none'],
      [4, 'none'],
      [8, 'grew'],
      [8, 'none'],
      [8, 'none'],
      [16, 'grew'],
      [16, 'none'],
      [16, 'none'],
      [32, 'grew'],
    ]);
    // And no further than maxScale, also when doubling would step over it.
    const capped = await expectSequence({ ...o, maxScale: 20 }, Array<Flags>(12).fill(clean), [
      ...([8, 8, 16, 16, 16, 20, 20, 20, 20, 20, 20, 20] as const).map((v, i): [number, ScaleEvent] => [v, i === 2 || i === 5 ? 'grew' : 'none']),
    ]);
    expect(capped.at(-1)!.goodSteps).toBe(6); // still counting at the cap
  });

  it('a forward non-finite value leaves the scale alone and restarts the growth count', async () => {
    const o = { initialScale: 16, growthInterval: 2, minScale: 1, maxScale: 2 ** 24 };
    const gpu = await expectSequence(
      o,
      [clean, fwdNaN, clean, clean, over, fwdNaN],
      [
        [16, 'none'],
        [16, 'none'], // not 'grew': the bad step restarted the count
        [16, 'none'],
        [32, 'grew'],
        [16, 'overflow'],
        [16, 'none'],
      ],
    );
    expect(gpu.map((a) => a.goodSteps)).toEqual([1, 0, 1, 0, 0, 0]);
  });

  it('an overflow and a forward NaN in the same step is a bad step, not an overflow', async () => {
    const o = { initialScale: 64, growthInterval: 5, minScale: 1, maxScale: 2 ** 24 };
    await expectSequence(o, [{ overflow: true, forwardBad: true }], [[64, 'none']]);
  });

  it('LossScaler: state round-trips (checkpoints), invalid restored values are ignored, bounds are checked', () => {
    const s = new LossScaler({ initialScale: 1024, growthInterval: 5, minScale: 1 });
    expect(s.maxScale).toBe(2 ** 24);
    s.restore({ scale: 512, goodSteps: 1 });
    const t = new LossScaler({ initialScale: 1024, growthInterval: 5, minScale: 1 });
    expect(t.state()).toEqual({ scale: 1024, goodSteps: 0 });
    t.restore(s.state());
    expect(t.state()).toEqual({ scale: 512, goodSteps: 1 });
    for (const bad of [{ scale: Number.NaN }, { scale: 0 }, { scale: -4 }, { scale: Infinity }, { goodSteps: -3 }, { goodSteps: Number.NaN }]) {
      t.restore(bad);
      expect(t.state(), JSON.stringify(bad)).toEqual({ scale: 512, goodSteps: 1 });
    }
    t.restore({ goodSteps: 2.7 });
    expect(t.goodSteps).toBe(2);
    expect(() => new LossScaler({ initialScale: 0.5, growthInterval: 5, minScale: 1 })).toThrow(/initialScale 0.5 is below minScale 1/);
    expect(() => new LossScaler({ initialScale: Number.NaN, growthInterval: 5, minScale: 1 })).toThrow(/below minScale/);
  });
});
