/**
 * forecast.js's charts, read as SVG: calendar ticks and dates on the x axis when the data has a
 * time column, the "forecast from here" label above the frame (never on the data), the held-out
 * chart against the baseline that did best on that series, and the error-by-horizon chart over
 * every evaluated window. The builders in isolation, then forecast.js --evaluate on a dated CSV.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorByHorizonChart, forecastChart, seriesTime } from '../../src/forecast/output.ts';
import { formatTime, timeTicks } from '../../src/report/chart.ts';
import { xmlProblems } from '../report/xml-check.ts';
import { runCli, scratch, tinyConfig, writeConfig } from '../train/cli-helpers.ts';
import { spawnAsync } from '../support/spawn.ts';

const FORECAST_JS = resolve(import.meta.dirname, '..', '..', 'forecast.js');
const DAY = 86_400_000;

/** The text of every element of a class (tick labels, legend items, ...). */
function texts(svg: string, cls: string): string[] {
  return [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>(.*?)</text>`, 'g'))].map((m) => m[1]!.replace(/<[^>]+>/g, ''));
}
const xTicks = (svg: string) =>
  [...svg.matchAll(/<g class="x-ticks"[^>]*>([\s\S]*?)<\/g>/g)].flatMap((m) => [...m[1]!.matchAll(/>([^<]*)<\/text>/g)].map((t) => t[1]!));
const frame = (svg: string) => {
  const m = /<rect class="frame" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(svg)!;
  return { x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) };
};
const annotationLabel = (svg: string) => {
  const m = /<text class="annotation-label" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)<\/text>/.exec(svg)!;
  return { x: Number(m[1]), y: Number(m[2]), text: m[3]! };
};
/** Every vertex of the lines of series `name`. */
const vertices = (svg: string, name: string) =>
  [...svg.matchAll(new RegExp(`<path class="line" data-series="${name.replace(/[()]/g, '\\$&')}"[^>]* d="([^"]+)"`, 'g'))].flatMap((m) =>
    m[1]!
      .split(/[ML]/)
      .filter(Boolean)
      .map((p) => p.split(',').map(Number) as [number, number]),
  );

describe('time axis', () => {
  it('ticks on calendar boundaries, labelled as dates at the step’s precision', () => {
    const lo = Date.UTC(2012, 0, 15);
    const years = timeTicks(lo, Date.UTC(2020, 5, 1), 6);
    expect(years.labels).toEqual(['2014', '2016', '2018', '2020']);
    for (const t of years.ticks) expect(new Date(t).getUTCMonth()).toBe(0);
    const months = timeTicks(lo, Date.UTC(2012, 9, 1), 5);
    expect(months.labels.every((l) => /^2012-\d\d$/.test(l))).toBe(true);
    for (const t of months.ticks) expect(new Date(t).getUTCDate()).toBe(1);
    const days = timeTicks(lo, lo + 10 * DAY, 5);
    expect(days.labels.every((l) => /^2012-01-\d\d$/.test(l))).toBe(true);
    for (const r of [years, months, days]) for (const t of r.ticks) expect(t).toBeGreaterThanOrEqual(lo);
    expect(formatTime(Date.UTC(2014, 2, 5, 12, 30), 3_600_000)).toBe('03-05 12:30');
  });

  it('a series’ time column labels its points; the forecast continues at its median spacing', () => {
    const values = Float64Array.from({ length: 10 }, (_, i) => Date.UTC(2020, 0, 1) + i * DAY);
    const t = seriesTime({ column: 'date', values, dates: true })!;
    expect(t.at(3)).toBe(values[3]);
    expect(t.at(12)).toBe(values[9]! + 3 * DAY);
    expect(seriesTime(undefined)).toBeNull();
  });
});

describe('forecastChart', () => {
  // A context rising to the top of the plot right before the forecast: the label used to sit on it.
  const context = Float64Array.from({ length: 48 }, (_, i) => i * i);
  const forecast = Float64Array.from({ length: 8 }, (_, i) => 2300 - 40 * i);

  it('puts "forecast from here" above the frame, where no data is', () => {
    const svg = forecastChart({ title: 's: next 8 points', start: 100, context, forecast });
    expect(xmlProblems(svg)).toEqual([]);
    const f = frame(svg);
    const label = annotationLabel(svg);
    expect(label.text).toBe('forecast from here');
    expect(label.y).toBeLessThan(f.y - 2); // baseline above the frame: the whole text is outside the plot
    for (const name of ['context', 'forecast (model)']) for (const [, y] of vertices(svg, name)) expect(y).toBeGreaterThanOrEqual(f.y);
    // The title stays clear of it.
    expect(Number(/<text x="[\d.]+" y="([\d.]+)"[^>]*font-size="15"/.exec(svg)![1])).toBeLessThan(label.y - 14);
  });

  it('dates on the x axis when the data has a time column, the index otherwise', () => {
    const values = Float64Array.from({ length: 200 }, (_, i) => Date.UTC(2019, 0, 1) + i * DAY);
    const time = seriesTime({ column: 'date', values, dates: true });
    const svg = forecastChart({ title: 's', start: 152, context, forecast, time });
    expect(svg).toContain('>date (UTC)<');
    const ticks = xTicks(svg);
    expect(ticks.length).toBeGreaterThan(2);
    for (const t of ticks) expect(t).toMatch(/^2019-\d\d(-\d\d)?$/);
    const plain = forecastChart({ title: 's', start: 152, context, forecast });
    expect(plain).toContain('>index<');
    expect(xTicks(plain).every((t) => /^\d+$/.test(t))).toBe(true);
    // A numeric time column (a year) is its numbers.
    const years = seriesTime({ column: 'year', values: Float64Array.from({ length: 200 }, (_, i) => 1850 + i), dates: false });
    const y = forecastChart({ title: 's', start: 152, context, forecast, time: years });
    expect(y).toContain('>year<');
    for (const t of xTicks(y)) expect(Number(t)).toBeGreaterThanOrEqual(2000);
  });
});

describe('errorByHorizonChart', () => {
  it('one line per method over steps ahead 1..H, the baselines dashed and named as such', () => {
    const H = 5;
    const per = (f: number) => ({ mse: Array.from({ length: H }, (_, k) => f * (k + 1)), mae: Array.from({ length: H }, (_, k) => f * Math.sqrt(k + 1)) });
    const methods = ['model', 'naive', 'seasonal naive', 'drift', 'window mean'];
    const svg = errorByHorizonChart(Object.fromEntries(methods.map((m, i) => [m, per(i + 1)])), methods, 42);
    expect(xmlProblems(svg)).toEqual([]);
    expect(texts(svg, 'legend-item')).toEqual(['model', 'naive (baseline)', 'seasonal naive (baseline)', 'drift (baseline)', 'window mean (baseline)']);
    expect(svg).toContain('over all 42 held-out windows');
    expect(svg).toContain('>steps ahead<');
    expect(vertices(svg, 'model').length).toBe(H);
    expect(svg).toMatch(/data-series="drift \(baseline\)" stroke="[^"]+" stroke-dasharray/);
  });
});

describe('forecast.js --evaluate on a CSV with a date column', () => {
  let dir: string;
  beforeAll(async () => {
    dir = scratch();
    const r = await runCli(dir, ['--config', writeConfig(dir, tinyConfig({ checkpoint: { every: 0, keep: 1 } }))]);
    expect(r.status, r.stderr).toBe(0);
    // 400 days of a weekly season plus a trend, dated (2021-03-01 to 2022-04-04).
    const rows = Array.from(
      { length: 400 },
      (_, i) => `${new Date(Date.UTC(2021, 2, 1) + i * DAY).toISOString().slice(0, 10)},${(10 + 0.02 * i + 3 * Math.sin((2 * Math.PI * i) / 7)).toFixed(4)}`,
    );
    writeFileSync(join(dir, 'dated.csv'), `date,value\n${rows.join('\n')}\n`);
  }, 300_000);

  it('dates on the axes, the best baseline of each series, and the error by horizon over every window', async () => {
    const H = 6;
    const r = await spawnAsync(
      process.execPath,
      [
        FORECAST_JS,
        '--checkpoint',
        'runs/t',
        '--data',
        'dated.csv',
        '--time-column',
        'date',
        '--column',
        'value',
        '--evaluate',
        '--horizon',
        String(H),
        '--out',
        'fc',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 240_000, env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = join(dir, 'fc');
    const charts = readdirSync(join(out, 'charts')).sort();
    expect(charts).toEqual(['dated-csv-value-held-out.svg', 'dated-csv-value.svg', 'error-by-horizon.svg']);
    const ev = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8')) as {
      windows: number;
      horizons: number[];
      series: { bestBaseline: { name: string; mse: number; model: number } }[];
      metrics: Record<string, { normalised: { mse: number[] } }>;
      perStep: Record<string, { normalised: { mse: number[] } }>;
    };
    // One series: its best baseline is the lowest normalised MSE at H among naive / seasonal naive / drift.
    const atH = ev.horizons.indexOf(H);
    const candidates = ['naive', 'seasonal naive', 'drift'].map((m) => [m, ev.metrics[m]!.normalised.mse[atH]!] as const);
    const lowest = candidates.reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(ev.series[0]!.bestBaseline.name).toBe(lowest[0]);
    expect(ev.series[0]!.bestBaseline.mse).toBeCloseTo(lowest[1], 12);

    const held = readFileSync(join(out, 'charts', 'dated-csv-value-held-out.svg'), 'utf8');
    expect(xmlProblems(held)).toEqual([]);
    const legend = texts(held, 'legend-item');
    expect(legend.slice(0, 3)).toEqual(['context', 'actual', 'forecast (model)']);
    expect(legend[3]).toMatch(new RegExp(`^best baseline here: ${lowest[0]} \\(norm\\. MSE [\\d.e+-]+; model [\\d.e+-]+; ${ev.windows} windows\\)$`));
    expect(held).toContain('>date (UTC)<');
    for (const t of xTicks(held)) expect(t).toMatch(/^2022-\d\d(-\d\d)?$/); // the held-out tail is in 2022
    const future = readFileSync(join(out, 'charts', 'dated-csv-value.svg'), 'utf8');
    for (const t of xTicks(future)) expect(t).toMatch(/^2022-\d\d(-\d\d)?$/);
    for (const svg of [held, future]) expect(annotationLabel(svg).y).toBeLessThan(frame(svg).y);

    const byH = readFileSync(join(out, 'charts', 'error-by-horizon.svg'), 'utf8');
    expect(xmlProblems(byH)).toEqual([]);
    expect(byH).toContain(`over all ${ev.windows} held-out windows`);
    expect(texts(byH, 'legend-item')).toEqual(['model', 'naive (baseline)', 'seasonal naive (baseline)', 'drift (baseline)', 'window mean (baseline)']);
    expect(vertices(byH, 'model').length).toBe(H);
    expect(ev.perStep.model!.normalised.mse.length).toBe(H);
  });
});
