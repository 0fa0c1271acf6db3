/**
 * Detectors whose failure no recorded run reproduces (the engine's experiments do not produce
 * it within their budget): their positive cases on constructed streams, built from a real
 * record of the default run with the numbers changed, so every other field stays realistic.
 * The negative cases are the recorded runs (fixtures.test.ts): none of them fires these.
 */
import { describe, expect, it } from 'vitest';
import { Diagnoser } from '../../src/diagnose/diagnoser.ts';
import { fixture } from './helpers.ts';

const base = fixture('default-small-moe');
const template = base.raw.find((r) => r.kind === 'train' && r.step === 100)!;

function run(steps: number, rec: (s: number) => Record<string, unknown>, config: Record<string, unknown> = {}) {
  const d = new Diagnoser({ ...base.header, config: { ...(base.header.config as object), ...config } });
  for (let s = 1; s <= steps; s++) d.push({ ...template, step: s, ...rec(s) });
  return d.findings();
}

describe('constructed positive cases', () => {
  it('aux-fights-main: the aux loss falls by a material amount while the main loss stalls', () => {
    // factor 0.5, aux 2.4 -> 2.0 over 80 steps (0.2 of loss), main flat at 0.3 with noise.
    const strong = { loss: { ...(base.header.config as { loss: object }).loss, auxFactor: 0.5, auxWarmupSteps: 0 } };
    const fs = run(
      80,
      (s) => ({ lossMain: 0.3 + 0.01 * Math.sin(s), aux: 2.4 - (0.4 * s) / 80, auxFactor: 0.5, loss: 0.3 + 0.5 * (2.4 - (0.4 * s) / 80) }),
      strong,
    );
    const f = fs.find((x) => x.kind === 'aux-fights-main')!;
    expect(f).toBeDefined();
    expect(f.fix.sets).toEqual(['loss.auxFactor=0.02', 'loss.auxWarmupSteps=30']);
    // The same aux drift with the main loss still falling: no finding.
    const ok = run(80, (s) => ({ lossMain: 0.5 - (0.3 * s) / 80, aux: 2.4 - (0.4 * s) / 80, auxFactor: 0.5 }));
    expect(ok.map((x) => x.kind)).not.toContain('aux-fights-main');
  });

  it('divergence from the train loss: the 20-step median above 2x its best for 20 steps', () => {
    const fs = run(120, (s) => ({ lossMain: s <= 40 ? 0.5 - s * 0.005 : 0.3 * (1 + (s - 40) * 0.05), loss: 1 }));
    const f = fs.find((x) => x.kind === 'divergence')!;
    expect(f.severity).toBe('error');
    expect(f.title).toBe('The run diverged: the loss grew far above its best');
  });

  it('loss spikes: two steps far outside the rolling median', () => {
    const fs = run(100, (s) => ({ lossMain: s === 60 || s === 80 ? 1.2 : 0.2 + 0.02 * Math.sin(s * 1.7) - s * 0.0005 }));
    const f = fs.find((x) => x.kind === 'loss-spikes')!;
    expect(f.evidence[0]!.values.spikes).toBe(2);
    expect(f.status).toBe('resolved');
    // One spike of 3x: not enough.
    expect(run(100, (s) => ({ lossMain: s === 60 ? 0.6 : 0.2 + 0.02 * Math.sin(s * 1.7) - s * 0.0005 })).map((x) => x.kind)).toEqual([]);
  });
});
