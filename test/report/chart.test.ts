import { describe, expect, it } from 'vitest';
import { formatTick, lineChart, logTicks, niceTicks, type LineChartOptions } from '../../src/report/chart.ts';
import { xmlProblems } from './xml-check.ts';

const base: LineChartOptions = { title: 'Loss & <friends>', xLabel: 'step', yLabel: 'loss', series: [] };

/** Text of the tick labels of one axis. */
function ticks(svg: string, axis: 'x' | 'y'): string[] {
  const group = svg.match(new RegExp(`<g class="${axis}-ticks"[^>]*>([\\s\\S]*?)</g>`))![1]!;
  return [...group.matchAll(/<text class="tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

/** The vertices of a series' line path, and how many sub-paths it has. */
function linePath(svg: string, name: string): { vertices: number; subpaths: number } {
  const d = svg.match(new RegExp(`<path class="line" data-series="${name}"[^>]* d="([^"]*)"`))?.[1] ?? '';
  return { vertices: d.split(/[ML]/).filter(Boolean).length, subpaths: (d.match(/M/g) ?? []).length };
}

describe('niceTicks / logTicks / formatTick', () => {
  it('linear ticks are 1/2/2.5/5 steps and the domain widens to whole ticks', () => {
    const t = niceTicks(0.13, 0.97, 5);
    expect(t.ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect([t.lo, t.hi]).toEqual([0, 1]);
    expect(niceTicks(1, 100, 5).ticks).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(3, 3).ticks.length).toBeGreaterThan(1); // a flat series still gets an axis
    const fixed = niceTicks(0, 0.93, 5, { lo: true, hi: true });
    expect([fixed.lo, fixed.hi]).toEqual([0, 0.93]);
    expect(fixed.ticks.at(-1)).toBeLessThanOrEqual(0.93);
  });

  it('log ticks are decades, with 2x and 5x over a short range', () => {
    expect(logTicks(0.5, 200).ticks).toEqual([0.1, 1, 10, 100, 1000]);
    expect(logTicks(1.5, 30).ticks).toEqual([1, 2, 5, 10, 20, 50, 100]);
    const wide = logTicks(1e-8, 1e6).ticks; // 14 decades: thinned to every other
    expect(wide.length).toBeLessThanOrEqual(9);
    expect(wide).toContain(1e-8);
  });

  it('formats ticks compactly', () => {
    expect(formatTick(0)).toBe('0');
    expect(formatTick(0.2)).toBe('0.2');
    expect(formatTick(1e-5)).toBe('1e-5');
    expect(formatTick(2e6)).toBe('2e+6');
    expect(formatTick(NaN)).toBe('NaN');
  });
});

describe('lineChart', () => {
  it('is well-formed SVG with title, legend names, ticks and escaped text', () => {
    const svg = lineChart({
      ...base,
      series: [
        {
          name: 'train <loss>',
          points: [
            [1, 3],
            [2, 2],
            [3, 1.5],
          ],
        },
        {
          name: 'valid',
          points: [
            [0, 3.2],
            [3, 1.7],
          ],
          dashed: true,
        },
      ],
      annotations: [{ x: 2, label: 'warm-up ends' }],
      references: [{ y: 2.5, label: 'ln 12' }],
    });
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('Loss &amp; &lt;friends&gt;');
    expect(svg).toContain('train &lt;loss&gt;');
    expect(svg).toContain('stroke-dasharray="6 4"');
    expect(svg).toContain('warm-up ends');
    expect(svg).toContain('ln 12');
    expect(ticks(svg, 'y')).toEqual(['1.5', '2', '2.5', '3', '3.5']);
    expect(ticks(svg, 'x')).toEqual(['0', '0.5', '1', '1.5', '2', '2.5', '3']);
    expect(svg).not.toContain('nonfinite');
  });

  it('shows NaN/Inf as markers in a red band, breaks the line, and never plots them at 0', () => {
    const svg = lineChart({
      ...base,
      series: [
        {
          name: 'loss',
          points: [
            [1, 2],
            [2, 3],
            [3, NaN],
            [4, Infinity],
            [5, 3],
            [6, 2.5],
          ],
        },
      ],
    });
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toContain('class="nonfinite-band"');
    expect(svg).toContain('>NaN/Inf</text>');
    expect(svg).toMatch(/class="nonfinite-marker" data-series="loss" data-x="3" data-value="NaN"/);
    expect(svg).toMatch(/class="nonfinite-marker" data-series="loss" data-x="4" data-value="\+Inf"/);
    expect(svg).toContain('<title>loss at 3: NaN</title>');
    expect(svg).toContain('2 non-finite'); // legend says so
    // Only the four finite points are on the line, in two pieces; 0 is not on the axis at all.
    expect(linePath(svg, 'loss')).toEqual({ vertices: 4, subpaths: 2 });
    expect(ticks(svg, 'y')).not.toContain('0');
    expect(Math.min(...ticks(svg, 'y').map(Number))).toBeGreaterThanOrEqual(2);
  });

  it('a lone finite point between NaNs is a dot; an all-NaN series still shows its markers', () => {
    const svg = lineChart({
      ...base,
      series: [
        {
          name: 'a',
          points: [
            [1, NaN],
            [2, 1],
            [3, NaN],
          ],
        },
        {
          name: 'b',
          points: [
            [1, NaN],
            [2, -Infinity],
          ],
        },
      ],
    });
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toMatch(/<circle class="point" data-series="a"/);
    expect(svg.match(/class="nonfinite-marker"/g)).toHaveLength(4);
    expect(svg).toContain('data-value="-Inf"');
  });

  it('log scale: decade ticks, and values <= 0 go to their own band instead of vanishing', () => {
    const svg = lineChart({
      ...base,
      logY: true,
      series: [
        {
          name: 'grad',
          points: [
            [1, 200],
            [2, 20],
            [3, 0],
            [4, 0.5],
            [5, -1],
          ],
        },
      ],
    });
    expect(xmlProblems(svg)).toEqual([]);
    expect(ticks(svg, 'y')).toEqual(['0.1', '1', '10', '100', '1000']);
    expect(svg).toContain('class="nonpositive-band"');
    expect(svg.match(/class="nonpositive-marker"/g)).toHaveLength(2);
    expect(svg).toContain('loss (log)');
    expect(linePath(svg, 'grad')).toEqual({ vertices: 2, subpaths: 1 }); // (4, 0.5) is a lone dot
    expect(svg).toMatch(/<circle class="point" data-series="grad"/);
  });

  it('respects fixed bounds and draws "no data" for empty input', () => {
    const svg = lineChart({
      ...base,
      yMin: 0,
      yMax: 1,
      series: [
        {
          name: 's',
          points: [
            [0, 0.3],
            [10, 0.6],
          ],
        },
      ],
    });
    expect(ticks(svg, 'y')[0]).toBe('0');
    expect(ticks(svg, 'y').at(-1)).toBe('1');
    const empty = lineChart({ ...base, series: [] });
    expect(xmlProblems(empty)).toEqual([]);
    expect(empty).toContain('no data');
  });

  it('widens the y range to show a reference line', () => {
    const svg = lineChart({
      ...base,
      series: [
        {
          name: 's',
          points: [
            [0, 1.1],
            [1, 1.2],
          ],
        },
      ],
      references: [{ y: 2.08, label: 'ln 8' }],
    });
    expect(svg).toContain('ln 8');
    expect(Math.max(...ticks(svg, 'y').map(Number))).toBeGreaterThanOrEqual(2.08);
  });

  it('wraps a long legend onto more rows without overflowing the width', () => {
    const series = Array.from({ length: 16 }, (_, e) => ({
      name: `expert ${e}`,
      points: [
        [0, e / 16],
        [1, 1 / 16],
      ] as [number, number][],
    }));
    const svg = lineChart({ ...base, series, width: 480 });
    expect(xmlProblems(svg)).toEqual([]);
    const xs = [...svg.matchAll(/<text class="legend-item" x="([\d.]+)" y="([\d.]+)"/g)];
    expect(xs).toHaveLength(16);
    expect(new Set(xs.map((m) => m[2])).size).toBeGreaterThan(1);
    for (const m of xs) expect(Number(m[1])).toBeLessThan(480);
  });
});

describe('xmlProblems (the checker itself)', () => {
  it('catches unbalanced tags, stray < and raw &', () => {
    expect(xmlProblems('<svg><g></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a < b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a & b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text x="1" x="2">a</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a &amp; b</text><line/></svg>')).toEqual([]);
  });
});
