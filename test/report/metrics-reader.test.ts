import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonSafe } from '../../src/train/run/metrics.ts';
import { MetricsParseError, parseMetrics } from '../../src/report/metrics-reader.ts';
import { readMetrics } from '../../src/report/metrics-file.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'report');

function trainLine(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'train',
    step: 1,
    microSteps: 1,
    loss: 1.5,
    lossMain: 1.4,
    headLosses: [1.4],
    aux: 1,
    z: 0.1,
    lr: 1e-3,
    auxFactor: 0.01,
    gradNorm: 3,
    gradNormPostClip: 1,
    clipCoef: 1 / 3,
    clippedFraction: 2 / 3,
    skipped: false,
    nonFinite: [],
    routing: [{ layer: 0, load: [0.5, 0.5], entropy: 0.69, maxShare: 0.5, dropped: 0 }],
    tokens: 64,
    ms: 1,
    liveBytes: 1,
    peakBytes: 2,
    ...over,
  };
}

describe('metrics reader', () => {
  it('round-trips the logger format, turning "NaN"/"Infinity" strings back into numbers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    const path = join(dir, 'metrics.jsonl');
    const lines = [
      { kind: 'valid', step: 0, loss: 2, lossMain: 2, horizons: [{ horizon: 1, mse: 1, mae: 0.5 }], windows: 8 },
      trainLine(),
      trainLine({
        step: 2,
        loss: NaN,
        gradNorm: Infinity,
        clipCoef: -Infinity,
        skipped: true,
        nonFinite: [{ name: 'model.layers.0.ffn_out', layer: 0, nonFinite: 3, min: -1, max: 2, mean: NaN }],
        routing: [{ layer: 0, load: [NaN, 1], entropy: NaN, maxShare: NaN, dropped: 0 }],
        somethingNew: { ignored: true },
      }),
      { kind: 'future-record', step: 3 },
    ];
    writeFileSync(path, `${lines.map((l) => jsonSafe(l)).join('\n')}\n\n`);
    expect(readFileSync(path, 'utf8')).toContain('"loss":"NaN"'); // the logger really writes strings

    const m = readMetrics(path);
    expect(m.valid).toHaveLength(1);
    expect(m.train).toHaveLength(2);
    expect(m.train[0]!.loss).toBe(1.5);
    const bad = m.train[1]!;
    expect(bad.loss).toBeNaN();
    expect(bad.gradNorm).toBe(Infinity);
    expect(bad.clipCoef).toBe(-Infinity);
    expect(bad.skipped).toBe(true);
    expect(bad.nonFinite[0]!.mean).toBeNaN();
    expect(bad.nonFinite[0]!.name).toBe('model.layers.0.ffn_out');
    expect(bad.routing[0]!.load[0]).toBeNaN();
    expect(bad.routing[0]!.entropy).toBeNaN();
  });

  it('reads the fixture runs', () => {
    const m = readMetrics(join(fixtures, 'collapse', 'metrics.jsonl'));
    expect(m.train).toHaveLength(8);
    expect(m.valid.map((v) => v.step)).toEqual([0, 4, 8]);
    expect(m.train[4]!.loss).toBeNaN();
    expect(m.train[4]!.headLosses![1]).toBe(Infinity);
  });

  it('names file:line and the key for a value of the wrong type', () => {
    const path = join(fixtures, 'malformed.jsonl');
    expect(() => readMetrics(path)).toThrow(MetricsParseError);
    try {
      readMetrics(path);
    } catch (e) {
      const err = e as MetricsParseError;
      expect(err.line).toBe(3); // line 2 is blank and is skipped but still counted
      expect(err.message).toContain(`${path}:3:`);
      expect(err.message).toMatch(/loss/);
    }
  });

  it('names the line of invalid JSON, a missing key, an unknown non-finite spelling', () => {
    const good = jsonSafe(trainLine());
    expect(() => parseMetrics(`${good}\n{"kind":"train",`, 'run.jsonl')).toThrow(/^run\.jsonl:2: not valid JSON/);
    const { gradNorm: _drop, ...missing } = trainLine();
    expect(() => parseMetrics(`${good}\n${good}\n${JSON.stringify(missing)}`, 'run.jsonl')).toThrow(/run\.jsonl:3: train record: gradNorm/);
    // "nan" is not what the logger writes; null would be a NaN silently lost upstream: both refused.
    expect(() => parseMetrics(jsonSafe(trainLine({ loss: 'nan' })), 'r')).toThrow(/r:1: train record: loss/);
    expect(() => parseMetrics(jsonSafe(trainLine({ loss: null })), 'r')).toThrow(/r:1: train record: loss/);
    expect(() => parseMetrics('[1,2]', 'r')).toThrow(/r:1: expected a JSON object/);
    expect(() => parseMetrics('{"step":1}', 'r')).toThrow(/r:1: missing string "kind"/);
    expect(() => parseMetrics(jsonSafe(trainLine({ routing: [{ layer: 0, load: 'x', entropy: 1, maxShare: 1 }] })), 'r')).toThrow(/routing\.0\.load/);
  });
});
