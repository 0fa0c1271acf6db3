import { describe, expect, it } from 'vitest';
import { DATASET_NAMES, parseDataConfig } from '../../src/train/data/config.ts';
import { DATASETS, loadDataset } from '../../src/train/data/datasets.ts';
import { loadData } from '../../src/train/data/load.ts';
import { formatReport } from '../../src/train/data/prepare.ts';
import { generateSynthetic } from '../../src/train/data/synthetic.ts';
import { dataErrorOfAsync, FIXTURES } from './helpers.ts';

/** Series lengths (and anomaly counts) of the packaged data sets, checked against the files. */
const EXPECTED: Record<string, { lengths: number[]; anomalies?: number[] }> = {
  'sensor-humidity': { lengths: [4417, 4417, 5039, 5041], anomalies: [117, 0, 0, 32] },
  'sensor-temperature': { lengths: [4417, 4417, 5039, 5041], anomalies: [117, 0, 0, 32] },
  co2: { lengths: [741] },
  sp500: { lengths: [5105] },
  'sp500-monthly': { lengths: [123] },
  stocks: { lengths: [123, 123, 123, 68, 123] },
  'seattle-temp': { lengths: [1461] },
  'seattle-hourly': { lengths: [8759] },
  'weather-temp': { lengths: [1461, 1461] },
  'global-temp': { lengths: [144] },
};

describe('real data sets', () => {
  it.each(DATASET_NAMES)('%s loads with the expected size, all finite', (name) => {
    const s = loadDataset(name);
    const total = s.reduce((a, x) => a + x.values.length, 0);
    console.log(`${name}: ${s.length} series, ${total} points (${DATASETS[name].description})`);
    expect(s.map((x) => x.values.length)).toEqual(EXPECTED[name]!.lengths);
    if (EXPECTED[name]!.anomalies) expect(s.map((x) => x.anomalies!.reduce((a, b) => a + b, 0))).toEqual(EXPECTED[name]!.anomalies);
    for (const x of s) expect(x.values.every(Number.isFinite)).toBe(true);
  });

  it('sensor readings are in a plausible range and time-ordered', () => {
    const hum = loadDataset('sensor-humidity');
    const temp = loadDataset('sensor-temperature');
    for (const x of hum) expect(Math.min(...x.values) >= 0 && Math.max(...x.values) <= 100).toBe(true);
    expect(temp[0]!.values[0]).toBeCloseTo(27.97, 5); // first row of the file (mote 1, reading 1)
    const co2 = loadDataset('co2')[0]!.values;
    expect(co2[0]).toBeCloseTo(315.7, 5);
    expect(co2[co2.length - 1]).toBeCloseTo(416.18, 5);
  });

  it('loadData on a real data set: windows, report, finite batches', async () => {
    const cfg = parseDataConfig({ source: { kind: 'dataset', name: 'sensor-temperature' }, contextLength: 64 });
    const { train, valid, report } = await loadData(cfg, { cwd: FIXTURES, seed: 3 });
    console.log(formatReport(report));
    expect(report).toMatchObject({
      seriesIn: 4,
      seriesOut: 4,
      points: 18914,
      nonFinitePoints: 0,
      stride: 32,
      trainWindows: train.length,
      validWindows: valid.length,
    });
    expect(train.length).toBeGreaterThan(400);
    expect(valid.length).toBeGreaterThan(40);
    const b = train.nextBatch(16);
    expect(b.inputs.length).toBe(16 * 64);
    expect(b.inputs.every(Number.isFinite) && b.labels.every(Number.isFinite)).toBe(true);
  });
});

describe('synthetic generator', () => {
  const base = {
    series: 3,
    length: 500,
    seed: 5,
    trend: 0.01,
    seasonality: [
      { period: 24, amplitude: 2 },
      { period: 168, amplitude: 1 },
    ],
    noise: 0.2,
    anomalies: { rate: 0.02, magnitude: 8 },
  };

  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateSynthetic(base);
    const b = generateSynthetic(base);
    const c = generateSynthetic({ ...base, seed: 6 });
    expect(a.map((s) => Array.from(s.values))).toEqual(b.map((s) => Array.from(s.values)));
    expect(a.map((s) => Array.from(s.anomalies!))).toEqual(b.map((s) => Array.from(s.anomalies!)));
    expect(Array.from(a[0]!.values)).not.toEqual(Array.from(c[0]!.values));
    expect(a.map((s) => s.values.length)).toEqual([500, 500, 500]);
  });

  it('puts a spike of ±magnitude exactly where the labels say, nowhere else', () => {
    const spiky = generateSynthetic(base);
    const clean = generateSynthetic({ ...base, anomalies: { rate: 0, magnitude: 0 } });
    let labelled = 0;
    spiky.forEach((s, i) => {
      for (let t = 0; t < s.values.length; t++) {
        const d = s.values[t]! - clean[i]!.values[t]!;
        if (s.anomalies![t]) {
          labelled++;
          expect(Math.abs(Math.abs(d) - 8)).toBeLessThan(1e-9);
        } else expect(d).toBe(0);
      }
    });
    // rate 0.02 over 1500 points: about 30.
    expect(labelled).toBeGreaterThan(10);
    expect(labelled).toBeLessThan(60);
    expect(clean.every((s) => s.anomalies!.every((x) => x === 0))).toBe(true);
  });

  it('feeds loadData at scale with series normalisation and maxSeries', async () => {
    const cfg = parseDataConfig({ source: { kind: 'synthetic', series: 200, length: 2000, seed: 1 }, contextLength: 128, normalize: 'series', maxSeries: 150 });
    const { train, valid, report } = await loadData(cfg, { cwd: FIXTURES });
    expect(report).toMatchObject({ seriesIn: 200, seriesOut: 150, droppedMaxSeries: 50, points: 300000 });
    // Train part 1800 points: starts 0, 64, ..., 1664 (27) plus the end-flush window at 1671.
    expect(train.length).toBe(150 * 28);
    // Valid part 200 points: starts 0, 64, plus 71.
    expect(valid.length).toBe(150 * 3);
    const v = [...valid.batches(64)];
    expect(v.reduce((a, b) => a + b.rows, 0)).toBe(valid.length);
  });
});

describe('loadData errors', () => {
  it('names the source and the fix when nothing survives cleaning', async () => {
    const cfg = parseDataConfig({ source: { kind: 'csv', path: 'header.csv', column: 'value' }, contextLength: 32 });
    const msg = await dataErrorOfAsync(() => loadData(cfg, { cwd: FIXTURES }));
    expect(msg).toContain('csv header.csv: no usable series');
    expect(msg).toContain('data.contextLength');
  });

  it('repairs NaN in a CSV end to end and reports it', async () => {
    const cfg = parseDataConfig({ source: { kind: 'csv', path: 'header.csv', column: 'value' }, contextLength: 4, validFraction: 0 });
    const { train, report } = await loadData(cfg, { cwd: FIXTURES });
    expect(report).toMatchObject({ nonFinitePoints: 3, repairedPoints: 3, seriesOut: 1 });
    expect(train.window(0).inputs.every(Number.isFinite)).toBe(true);
    expect(formatReport(report)).toContain('non-finite points 3, repaired 3');
  });
});
