import { describe, expect, it } from 'vitest';
import { LossScaler } from '../../src/optim/loss-scale.ts';
import { lossScaleUpdate } from '../reference/loss-scale-ref.ts';

// The update rules, on the reference model of the GPU's step_end (test/kernels/train-state.test.ts
// checks the GPU against it), and LossScaler's checkpoint state.
describe('LossScaler', () => {
  it('halves on overflow, grows after growthInterval clean steps, never passes its bounds', () => {
    const s = new LossScaler({ initialScale: 8, growthInterval: 3, minScale: 2, maxScale: 32 });
    expect(lossScaleUpdate(s, true, false)).toBe('overflow');
    expect(s.scale).toBe(4);
    expect(lossScaleUpdate(s, true, false)).toBe('overflow');
    expect(s.scale).toBe(2);
    // At the floor an overflow is no longer a range problem: the caller counts it as a bad step.
    expect(lossScaleUpdate(s, true, false)).toBe('overflow-at-min');
    expect(s.scale).toBe(2);
    expect([lossScaleUpdate(s, false, false), lossScaleUpdate(s, false, false), lossScaleUpdate(s, false, false)]).toEqual(['none', 'none', 'grew']);
    expect(s.scale).toBe(4);
    for (let i = 0; i < 30; i++) lossScaleUpdate(s, false, false);
    expect(s.scale).toBe(32);
  });

  it('a forward non-finite value leaves the scale alone and restarts the growth count', () => {
    const s = new LossScaler({ initialScale: 16, growthInterval: 2, minScale: 1 });
    lossScaleUpdate(s, false, false);
    expect(lossScaleUpdate(s, true, true)).toBe('none');
    expect(s.scale).toBe(16);
    expect(s.goodSteps).toBe(0);
    lossScaleUpdate(s, false, false);
    expect(lossScaleUpdate(s, false, false)).toBe('grew');
    expect(s.scale).toBe(32);
  });

  it('state round-trips (checkpoints) and ignores invalid restored values', () => {
    const s = new LossScaler({ initialScale: 1024, growthInterval: 5, minScale: 1 });
    lossScaleUpdate(s, true, false);
    lossScaleUpdate(s, false, false);
    const t = new LossScaler({ initialScale: 1024, growthInterval: 5, minScale: 1 });
    t.restore(s.state());
    expect(t.state()).toEqual({ scale: 512, goodSteps: 1 });
    t.restore({ scale: Number.NaN, goodSteps: -3 });
    expect(t.state()).toEqual({ scale: 512, goodSteps: 1 });
    expect(() => new LossScaler({ initialScale: 0.5, growthInterval: 5, minScale: 1 })).toThrow(/below minScale/);
  });
});
