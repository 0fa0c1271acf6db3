/** Config validation: every bad-config class fails with the key path, the bad value and what is allowed. */
import { describe, it, expect } from 'vitest';
import { ConfigError, parseConfig } from '../../src/train/config.ts';

const base = () => ({
  model: { preset: 'small-moe' },
  data: { source: { kind: 'synthetic', series: 4, length: 400 }, contextLength: 64 },
  optim: { lr: 1e-3 },
  schedule: { steps: 10, microBatch: 4 },
});

function errorOf(raw: unknown, overrides: string[] = []): string {
  try {
    parseConfig(raw, 'test.json', overrides);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('training config', () => {
  it('accepts the minimal config and fills defaults from the preset', () => {
    const c = parseConfig(base());
    expect(c.model.hidden).toBe(64);
    expect(c.model.horizons).toEqual([1, 8, 32]);
    expect(c.optim.beta2).toBe(0.95);
    expect(c.optim.weightDecay).toBe(0.1);
    expect(c.loss.auxFactor).toBe(0.02);
    expect(c.model.init.routerStd).toBeLessThanOrEqual(1e-2);
  });

  it('rejects an unknown key, naming its path and the allowed keys', () => {
    const raw = base();
    (raw.optim as Record<string, unknown>).learning_rate = 1;
    const msg = errorOf(raw);
    expect(msg).toContain('optim.learning_rate: unknown key');
    expect(msg).toContain('allowed here: lr');
    expect(msg).toContain('test.json');
  });

  it('rejects a wrong type with the value it got', () => {
    const raw = base();
    (raw.model as Record<string, unknown>).hidden = '64';
    const msg = errorOf(raw);
    expect(msg).toMatch(/model\.hidden: .*number.*got "64"/);
  });

  it('rejects a negative learning rate', () => {
    const raw = base();
    raw.optim.lr = -1e-3;
    expect(errorOf(raw)).toMatch(/optim\.lr: expected a number > 0, got -0\.001/);
  });

  it('rejects a horizon longer than the context', () => {
    const raw = base();
    raw.data.contextLength = 16;
    expect(errorOf(raw)).toMatch(/model\.horizons: horizon 32 is longer than data\.contextLength 16/);
  });

  it('reports a missing required section', () => {
    const raw: Record<string, unknown> = base();
    delete raw.schedule;
    expect(errorOf(raw)).toMatch(/schedule: required/);
  });

  it('applies --set overrides before validation, and validates them', () => {
    const c = parseConfig(base(), 't', ['optim.lr=3e-4', 'schedule.steps=7', 'logging.dir=runs/x', 'model.experts=8']);
    expect(c.optim.lr).toBe(3e-4);
    expect(c.schedule.steps).toBe(7);
    expect(c.logging.dir).toBe('runs/x');
    expect(c.model.experts).toBe(8);
    expect(errorOf(base(), ['optim.lr=abc'])).toMatch(/optim\.lr: .*got "abc"/);
    expect(errorOf(base(), ['nonsense'])).toMatch(/expected path=value/);
    expect(errorOf(base(), ['optim.lr.x=1'])).toMatch(/lr is not an object/);
  });

  it('checks model consistency (topK <= experts, head dim even)', () => {
    expect(errorOf(base(), ['model.topK=9'])).toMatch(/model\.topK: topK 9 exceeds experts 4/);
    expect(errorOf(base(), ['model.heads=3'])).toMatch(/model\.heads: hidden 64 is not divisible by heads 3/);
  });
});
