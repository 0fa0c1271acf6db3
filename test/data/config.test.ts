import { describe, expect, it } from 'vitest';
import { checkHorizons, DataConfigSchema, effectiveMinLength, effectiveStride, parseDataConfig } from '../../src/train/data/config.ts';
import { dataErrorOf } from './helpers.ts';

describe('DataConfigSchema', () => {
  it('fills defaults', () => {
    const c = parseDataConfig({ source: { kind: 'csv', path: 'x.csv' }, contextLength: 32 });
    expect(c.normalize).toBe('window');
    expect(c.nonFinite).toBe('interpolate');
    expect(c.validFraction).toBe(0.1);
    expect(c.source).toEqual({ kind: 'csv', path: 'x.csv', header: true, delimiter: ',' });
    expect(effectiveStride(c)).toBe(16);
    expect(effectiveStride({ contextLength: 1 })).toBe(1);
    expect(effectiveMinLength(c)).toBe(33);
    expect(effectiveMinLength({ contextLength: 8, minLength: 100 })).toBe(100);
  });

  it('fills synthetic defaults', () => {
    const c = parseDataConfig({ source: { kind: 'synthetic', series: 2, length: 100 }, contextLength: 8 });
    expect(c.source).toMatchObject({ seed: 0, trend: 0, noise: 0.1, anomalies: { rate: 0, magnitude: 0 } });
  });

  it('rejects an unknown top-level key with its path', () => {
    const r = DataConfigSchema.safeParse({ source: { kind: 'dataset', name: 'co2' }, contextLength: 8, strides: 4 });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['strides'], path: [] });
    expect(dataErrorOf(() => parseDataConfig({ source: { kind: 'dataset', name: 'co2' }, contextLength: 8, strides: 4 }))).toContain(
      'data.strides: unknown key',
    );
  });

  it('rejects an unknown key inside the source with its path', () => {
    const raw = { source: { kind: 'csv', path: 'a.csv', colum: 'x' }, contextLength: 8 };
    const r = DataConfigSchema.safeParse(raw);
    expect(r.error!.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['colum'], path: ['source'] });
    expect(dataErrorOf(() => parseDataConfig(raw))).toContain('data.source.colum: unknown key');
  });

  it('rejects bad values with their path', () => {
    expect(dataErrorOf(() => parseDataConfig({ source: { kind: 'dataset', name: 'nope' }, contextLength: 8 }))).toContain('data.source.name');
    expect(dataErrorOf(() => parseDataConfig({ source: { kind: 'dataset', name: 'co2' }, contextLength: 0 }))).toContain('data.contextLength');
    expect(dataErrorOf(() => parseDataConfig({ source: { kind: 'dataset', name: 'co2' }, contextLength: 8, validFraction: 1 }))).toContain(
      'data.validFraction',
    );
    expect(dataErrorOf(() => parseDataConfig({ source: { kind: 'parquet', path: 'x' }, contextLength: 8 }))).toContain('data.source.kind');
  });

  it('checkHorizons refuses horizons longer than the context', () => {
    expect(() => checkHorizons(64, [1, 8, 32, 64])).not.toThrow();
    const msg = dataErrorOf(() => checkHorizons(32, [1, 64]));
    expect(msg).toContain('horizon 64 is longer than data.contextLength 32');
    expect(msg).toContain('model.horizons');
    expect(dataErrorOf(() => checkHorizons(32, []))).toContain('model.horizons');
    expect(dataErrorOf(() => checkHorizons(32, [0]))).toContain('positive integer');
  });
});
