import { describe, expect, it } from 'vitest';
import { cleanSeries } from '../../src/train/data/clean.ts';
import { splitSeries } from '../../src/train/data/split.ts';
import { NORM_EPS, type Segment, WindowDataset, windowStarts } from '../../src/train/data/windows.ts';
import { dataErrorOf } from './helpers.ts';

const seg = (values: number[], seriesIndex = 0, offset = 0): Segment => ({
  seriesIndex,
  seriesId: `s${seriesIndex}`,
  values: Float64Array.from(values),
  offset,
});
const ramp = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('windowStarts', () => {
  it('steps by stride and adds one window flush with the end', () => {
    expect(windowStarts(10, 4, 2)).toEqual([0, 2, 4, 5]);
    expect(windowStarts(9, 4, 2)).toEqual([0, 2, 4]);
    expect(windowStarts(5, 4, 3)).toEqual([0]);
    expect(windowStarts(4, 4, 1)).toEqual([]);
  });
});

describe('WindowDataset', () => {
  it('labels are the inputs shifted by one; mask is 1', () => {
    const x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
    const d = new WindowDataset([seg(x)], { contextLength: 4, stride: 3, normalize: 'none' });
    expect(d.length).toBe(3); // starts 0, 3, 6
    const b = [...d.batches(8)][0]!;
    expect(b).toMatchObject({ B: 3, T: 4, rows: 3 });
    expect(Array.from(b.inputs)).toEqual([3, 1, 4, 1, 1, 5, 9, 2, 2, 6, 5, 3]);
    expect(Array.from(b.labels)).toEqual([1, 4, 1, 5, 5, 9, 2, 6, 6, 5, 3, 5]);
    expect(Array.from(b.mask)).toEqual(new Array(12).fill(1));
    for (let r = 0; r < 3; r++) for (let t = 0; t < 3; t++) expect(b.labels[r * 4 + t]).toBe(b.inputs[r * 4 + t + 1]);
  });

  it('normalises by the mean/std of the inputs only, and keeps them to denormalise', () => {
    const x = [1, 2, 3, 4, 100];
    const d = new WindowDataset([seg(x)], { contextLength: 4, stride: 1, normalize: 'window' });
    const w = d.window(0);
    const std = Math.sqrt(1.25);
    expect(w.mean).toBe(2.5);
    expect(w.scale).toBeCloseTo(std + NORM_EPS, 12);
    expect(w.inputs[0]).toBeCloseTo((1 - 2.5) / (std + NORM_EPS), 6);
    expect(w.labels[3]).toBeCloseTo((100 - 2.5) / (std + NORM_EPS), 4); // the label 100 did not move the stats
    for (let t = 0; t < 4; t++) expect(w.labels[t]! * w.scale + w.mean).toBeCloseTo(x[t + 1]!, 4);
  });

  it('a constant series normalises to finite zeros (std 0 divides by 1)', () => {
    const { series, report } = cleanSeries([{ id: 'c', values: new Float64Array(20).fill(42) }], { nonFinite: 'interpolate', minLength: 9 });
    expect(report.constantSeries).toBe(1);
    for (const normalize of ['window', 'series'] as const) {
      const segs: Segment[] = [{ seriesIndex: 0, seriesId: 'c', values: series[0]!.values, offset: 0, stats: { mean: 42, std: 0 } }];
      const d = new WindowDataset(segs, { contextLength: 8, stride: 4, normalize });
      for (const b of d.batches(2)) {
        for (const v of [...b.inputs, ...b.labels]) expect(v).toBe(0);
        expect(Array.from(b.scale.subarray(0, b.rows))).toEqual(new Array(b.rows).fill(1));
      }
    }
  });

  it('validation batches: ordered, last one short or padded with mask 0', () => {
    const d = new WindowDataset([seg(ramp(20)), seg(ramp(12, 100), 1)], { contextLength: 4, stride: 4, normalize: 'none' });
    expect(d.length).toBe(8); // starts 0,4,8,12,15 in s0 and 0,4,7 in s1
    const plain = [...d.batches(3)];
    expect(plain.map((b) => [b.B, b.rows])).toEqual([
      [3, 3],
      [3, 3],
      [2, 2],
    ]);
    expect(plain.flatMap((b) => Array.from(b.index))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(plain.flatMap((b) => Array.from({ length: b.rows }, (_, r) => b.inputs[r * 4]))).toEqual([0, 4, 8, 12, 15, 100, 104, 107]);
    const padded = [...d.batches(3, { pad: true })];
    const last = padded[2]!;
    expect([last.B, last.rows]).toEqual([3, 2]);
    expect(Array.from(last.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    expect(Array.from(last.index)).toEqual([6, 7, -1]);
    expect(Array.from(last.inputs.subarray(8))).toEqual([0, 0, 0, 0]);
    // Iterating twice gives the same batches (validation is repeatable).
    expect([...d.batches(3)].map((b) => Array.from(b.labels))).toEqual(plain.map((b) => Array.from(b.labels)));
  });

  it('shuffling is seeded, covers each window once per epoch, and restore() repeats the batches', () => {
    const d = () => new WindowDataset([seg(ramp(200))], { contextLength: 4, stride: 1, normalize: 'none', seed: 7 });
    const a = d();
    const n = a.length;
    const seen = new Set<number>();
    for (let i = 0; i < Math.floor(n / 4); i++) for (const w of a.nextBatch(4).index) seen.add(w);
    expect(seen.size).toBe(Math.floor(n / 4) * 4);
    // Same seed, same stream; another seed, another order.
    const b = d();
    const c = new WindowDataset([seg(ramp(200))], { contextLength: 4, stride: 1, normalize: 'none', seed: 8 });
    expect(Array.from(b.nextBatch(16).index)).toEqual(Array.from(d().nextBatch(16).index));
    expect(Array.from(c.nextBatch(16).index)).not.toEqual(Array.from(d().nextBatch(16).index));

    // Save mid-epoch and across epoch boundaries, restore into a fresh dataset: identical batches.
    for (const skip of [0, 3, 48, 49, 120]) {
      const x = d();
      for (let i = 0; i < skip; i++) x.nextBatch(7);
      const saved = JSON.parse(JSON.stringify(x.state())) as unknown;
      const expected = [x.nextBatch(7), x.nextBatch(7), x.nextBatch(50)];
      const y = d();
      y.restore(saved);
      const got = [y.nextBatch(7), y.nextBatch(7), y.nextBatch(50)];
      got.forEach((g, i) => {
        expect(Array.from(g.index)).toEqual(Array.from(expected[i]!.index));
        expect(g.inputs).toEqual(expected[i]!.inputs);
        expect(g.epoch).toBe(expected[i]!.epoch);
      });
    }
  });

  it('batches wrap into the next epoch with a fresh order', () => {
    const d = new WindowDataset([seg(ramp(10))], { contextLength: 4, stride: 1, normalize: 'none', seed: 1 });
    expect(d.length).toBe(6);
    const b = d.nextBatch(4);
    expect(b.epoch).toBe(0);
    const c = d.nextBatch(4); // 2 from epoch 0, 2 from epoch 1
    expect(c.epoch).toBe(1);
    expect(new Set([...b.index, ...c.index.subarray(0, 2)]).size).toBe(6);
    expect(d.state()).toMatchObject({ epoch: 1, cursor: 2, windows: 6 });
  });

  it('restore() refuses a state from other data or a damaged one', () => {
    const d = new WindowDataset([seg(ramp(10))], { contextLength: 4, stride: 1, normalize: 'none' });
    const other = new WindowDataset([seg(ramp(11))], { contextLength: 4, stride: 1, normalize: 'none' });
    expect(dataErrorOf(() => d.restore(other.state()))).toContain('saved with 7 training windows but the data now gives 6');
    expect(dataErrorOf(() => d.restore({ epoch: -1, cursor: 0, rngState: 1, windows: 6 }))).toContain('epoch');
    expect(dataErrorOf(() => d.restore({ epoch: 0, cursor: 9, rngState: 1, windows: 6 }))).toContain('cursor');
  });

  it('an empty dataset or a bad batch size gives a clear error', () => {
    const d = new WindowDataset([], { contextLength: 4, stride: 1, normalize: 'none' });
    expect(d.length).toBe(0);
    expect(dataErrorOf(() => d.nextBatch(2))).toContain('no windows');
    const e = new WindowDataset([seg(ramp(10))], { contextLength: 4, stride: 1, normalize: 'none' });
    expect(dataErrorOf(() => e.nextBatch(0))).toContain('batch size 0');
  });
});

describe('splitSeries', () => {
  const clean = (lengths: number[]) =>
    cleanSeries(
      lengths.map((n, i) => ({ id: `s${i}`, values: Float64Array.from(ramp(n, 1000 * i)) })),
      { nonFinite: 'interpolate', minLength: 1 },
    ).series;

  it('valid is the tail, train the head: no shared point, time-ordered', () => {
    const { train, valid, trainOnly } = splitSeries(clean([100, 1000, 15, 12]), 0.1, 8);
    // 100: valid max(10, 9) = 10; 1000: 100; 15: 15 - 9 < 9 -> train only; 12: train only.
    expect(trainOnly).toBe(2);
    expect(train.map((s) => s.values.length)).toEqual([90, 900, 15, 12]);
    expect(valid.map((s) => [s.seriesIndex, s.offset, s.values.length])).toEqual([
      [0, 90, 10],
      [1, 900, 100],
    ]);
    for (const v of valid) {
      const t = train.find((s) => s.seriesIndex === v.seriesIndex)!;
      expect(t.values[t.values.length - 1]! < v.values[0]!).toBe(true); // ramps: train strictly before valid
      expect(t.offset + t.values.length).toBe(v.offset);
    }
    const d = new WindowDataset(valid, { contextLength: 8, stride: 4, normalize: 'none' });
    for (let w = 0; w < d.length; w++) {
      const info = d.window(w);
      const v = valid.find((s) => s.seriesIndex === info.seriesIndex)!;
      expect(info.start >= v.offset && info.start + 9 <= v.offset + v.values.length).toBe(true);
    }
  });

  it('at least contextLength + 1 validation points; validFraction 0 keeps all for training', () => {
    const { valid } = splitSeries(clean([30]), 0.01, 8);
    expect(valid[0]!.values.length).toBe(9);
    const none = splitSeries(clean([30]), 0, 8);
    expect(none).toMatchObject({ valid: [], trainOnly: 0 });
    expect(none.train[0]!.values.length).toBe(30);
  });
});
