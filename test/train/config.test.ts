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

  describe('optim.freeze and optim.lora', () => {
    it('accepts group names, "backbone" and a LoRA block', () => {
      const c = parseConfig(base(), 'test.json', [
        'optim.freeze=["backbone"]',
        'optim.lora={"rank":4,"alpha":8,"targets":["q_proj","v_proj","gate_proj","up_proj"]}',
      ]);
      expect(c.optim.freeze).toEqual(['backbone']);
      expect(c.optim.lora).toEqual({ rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'gate_proj', 'up_proj'] });
      expect(parseConfig(base()).optim.freeze).toEqual([]);
    });

    it('rejects an unknown group, naming the valid ones', () => {
      const msg = errorOf(base(), ['optim.freeze=["attn"]']);
      expect(msg).toContain(
        'optim.freeze.0: expected one of "embedding", "attention", "norm", "router", "experts", "shared_expert", "head", "backbone", got "attn"',
      );
    });

    it('rejects freezing everything without adapters', () => {
      expect(errorOf(base(), ['optim.freeze=["backbone","head"]'])).toMatch(
        /optim\.freeze: \["backbone","head"\] freezes every parameter, so nothing would train: leave a group out/,
      );
      // With adapters something trains.
      expect(parseConfig(base(), 'x', ['optim.freeze=["backbone","head"]', 'optim.lora={"rank":2,"alpha":2,"targets":["q_proj"]}']).optim.lora?.rank).toBe(2);
    });

    it('rejects gate_proj without up_proj, an unknown target and a bad rank', () => {
      expect(errorOf(base(), ['optim.lora={"rank":2,"alpha":2,"targets":["gate_proj"]}'])).toContain(
        'optim.lora.targets: gate_proj and up_proj are one fused weight in this engine and take one adapter: name both or neither',
      );
      expect(errorOf(base(), ['optim.lora={"rank":2,"alpha":2,"targets":["qkv"]}'])).toContain(
        'optim.lora.targets.0: expected one of "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", got "qkv"',
      );
      expect(errorOf(base(), ['optim.lora={"rank":0,"alpha":2,"targets":["q_proj"]}'])).toContain('optim.lora.rank: expected a number > 0, got 0');
      expect(errorOf(base(), ['optim.lora={"rank":2,"targets":["q_proj"]}'])).toContain('optim.lora.alpha: required');
    });
  });
});
