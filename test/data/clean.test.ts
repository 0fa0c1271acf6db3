import { describe, expect, it } from 'vitest';
import { cleanSeries, interpolateGaps } from '../../src/train/data/clean.ts';
import type { Series } from '../../src/train/data/series.ts';
import { dataErrorOf } from './helpers.ts';

const S = (id: string, v: number[]): Series => ({ id, values: Float64Array.from(v) });

describe('interpolateGaps', () => {
  it('fills inner gaps linearly and edge gaps with the nearest value', () => {
    const x = Float64Array.from([NaN, NaN, 2, NaN, NaN, 5, Infinity, 9, NaN]);
    expect(interpolateGaps(x)).toBe(6);
    expect(Array.from(x)).toEqual([2, 2, 2, 3, 4, 5, 7, 9, 9]);
  });
  it('treats values beyond float32 range as gaps (they would become Inf in a Float32Array)', () => {
    const x = Float64Array.from([1, 1e39, 3]);
    expect(interpolateGaps(x)).toBe(1);
    expect(Array.from(x)).toEqual([1, 2, 3]);
  });
});

describe('cleanSeries', () => {
  const input = (): Series[] => [
    S('ok', [1, 2, 3, 4, 5]),
    S('gaps', [NaN, 2, NaN, 4, -Infinity]),
    S('allnan', [NaN, NaN, NaN, NaN, NaN]),
    S('short', [1, 2, 3]),
    S('empty', []),
    S('const', [7, 7, 7, 7, 7]),
  ];

  it('interpolates and counts', () => {
    const inp = input();
    const { series, report } = cleanSeries(inp, { nonFinite: 'interpolate', minLength: 5 });
    expect(series.map((s) => s.id)).toEqual(['ok', 'gaps', 'const']);
    expect(Array.from(series[1]!.values)).toEqual([2, 2, 3, 4, 4]);
    expect(Number.isNaN(inp[1]!.values[0])).toBe(true); // the input is not modified
    expect(series.map((s) => s.constant)).toEqual([false, false, true]);
    expect(report).toMatchObject({
      seriesIn: 6,
      seriesOut: 3,
      nonFinitePoints: 8,
      repairedPoints: 3,
      droppedNonFinite: 1,
      droppedShort: 1,
      droppedEmpty: 1,
      constantSeries: 1,
    });
    expect(report.details.join('\n')).toContain('gaps: 3 NaN/Inf point(s) interpolated (first at index 0)');
  });

  it('drops series with non-finite points', () => {
    const { series, report } = cleanSeries(input(), { nonFinite: 'drop-series', minLength: 5 });
    expect(series.map((s) => s.id)).toEqual(['ok', 'const']);
    expect(report).toMatchObject({ nonFinitePoints: 8, repairedPoints: 0, droppedNonFinite: 2, droppedShort: 1, droppedEmpty: 1 });
  });

  it('refuses non-finite points when asked, naming the series and index', () => {
    const msg = dataErrorOf(() => cleanSeries([S('ok', [1, 2]), S('bad', [1, 2, NaN, 4])], { nonFinite: 'error', minLength: 2 }));
    expect(msg).toContain('series bad has 1 NaN/Inf point(s) (first at index 2');
    expect(msg).toContain('data.nonFinite');
  });
});
