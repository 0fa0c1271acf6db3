/**
 * forecast.js as a user types it, on a tiny model trained by train.js: the future forecast, the
 * evaluation on the held-out windows (every number in evaluation.json recomputed here in float64
 * from forecasts.csv and the series themselves, the baselines from their definitions), the charts,
 * and bad input (exit 2, a message naming the problem and the fix, nothing written).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { loadData, parseDataConfig } from '../../src/train/data/index.ts';
import { runCli, scratch, tinyConfig, writeConfig } from '../train/cli-helpers.ts';
import { xmlProblems } from '../report/xml-check.ts';
import { node } from '../support/spawn.ts';

const forecast = (cwd: string, args: string[]) => node('forecast.js', args, cwd);

interface Row {
  series: string;
  origin: string;
  index: string;
  step: string;
  forecast: string;
  actual: string;
}

interface Evaluation {
  contextLength: number;
  horizon: number;
  windows: number;
  generation: number[];
  horizons: number[];
  series: { id: string; windows: number; season: { period: number; source: string; acf: number | null } }[];
  metrics: Record<string, Record<'normalised' | 'original', { mse: number[]; mae: number[] }>>;
}

const cfg = tinyConfig();
const T = 24;
let dir: string;

beforeAll(async () => {
  dir = scratch();
  const r = await runCli(dir, ['--config', writeConfig(dir, cfg)]);
  expect(r.status, r.stderr).toBe(0);
});

describe('forecast.js --evaluate', () => {
  it('forecasts past the longest head and scores the model and the baselines on the held-out windows', async () => {
    const H = 6;
    const r = await forecast(dir, ['--checkpoint', 'runs/t', '--evaluate', '--horizon', String(H)]);
    expect(r.status, r.stderr).toBe(0);
    const out = join(dir, 'runs/t/forecast');
    expect(readdirSync(out).sort()).toEqual(['charts', 'evaluation.json', 'forecasts.csv']);
    expect(r.stdout).toContain('heads run: 4 + 1 + 1, autoregressive');
    expect(r.stdout).toMatch(/horizon\s+metric\s+model\s+naive\s+seasonal naive\s+drift\s+window mean/);
    expect(r.stdout).toMatch(/the model has the lowest error in \d+ of 12 rows/);
    expect(r.stdout).toMatch(/model vs drift: lower error in/);

    const ev = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8')) as Evaluation;
    expect(ev).toMatchObject({ contextLength: T, horizon: H, generation: [4, 1, 1], horizons: [1, 4, 6] });
    // The synthetic series have a 24-step season (tinyConfig's default seasonality).
    expect(ev.series.map((s) => [s.season.period, s.season.source])).toEqual(ev.series.map(() => [24, 'detected']));

    const rows = parse(readFileSync(join(out, 'forecasts.csv'), 'utf8'), { columns: true }) as Row[];
    const data = await loadData(parseDataConfig(cfg.data), { cwd: dir });
    const values = new Map(data.series.map((s) => [s.id, s.values]));
    // Future rows: every series, H steps from its end, no actual.
    const future = rows.filter((x) => x.actual === '');
    expect(future.length).toBe(data.series.length * H);
    for (const s of data.series)
      expect(future.filter((x) => x.series === s.id).map((x) => Number(x.index))).toEqual(Array.from({ length: H }, (_, k) => s.values.length + k));

    // Held-out rows, grouped by window: recompute every metric in float64.
    const held = rows.filter((x) => x.actual !== '');
    const windows = new Map<string, Row[]>();
    for (const x of held) {
      const k = `${x.series}@${x.origin}`;
      windows.set(k, [...(windows.get(k) ?? []), x]);
    }
    expect(windows.size).toBe(ev.windows);
    expect(ev.windows).toBeGreaterThan(0);
    const methods = ['model', 'naive', 'seasonal naive', 'drift', 'window mean'];
    const se = new Map(methods.map((m) => [m, { no: new Float64Array(H), nn: new Float64Array(H), ao: new Float64Array(H), an: new Float64Array(H) }]));
    for (const w of windows.values()) {
      const v = values.get(w[0]!.series)!;
      const origin = Number(w[0]!.origin);
      expect(origin - T).toBeGreaterThanOrEqual(v.length - Math.max(Math.ceil(0.1 * v.length), T + 1)); // inside the held-out tail
      const ctx = Array.from(v.subarray(origin - T, origin));
      const mean = ctx.reduce((a, b) => a + b, 0) / T;
      const scale = Math.sqrt(ctx.reduce((a, b) => a + (b - mean) ** 2, 0) / T) + 1e-5;
      const last = ctx[T - 1]!;
      const fc: Record<string, (k: number) => number> = {
        model: (k) => Number(w[k - 1]!.forecast),
        naive: () => last,
        'seasonal naive': (k) => ctx[T - 1 + k - 24 * Math.ceil(k / 24)]!,
        drift: (k) => last + (k * (last - ctx[0]!)) / (T - 1),
        'window mean': () => mean,
      };
      for (let k = 1; k <= H; k++) {
        const actual = v[origin + k - 1]!;
        expect(Number(w[k - 1]!.actual)).toBe(actual);
        expect(Number(w[k - 1]!.index)).toBe(origin + k - 1);
        for (const m of methods) {
          const e = fc[m]!(k) - actual;
          const s = se.get(m)!;
          s.no[k - 1]! += e * e;
          s.ao[k - 1]! += Math.abs(e);
          s.nn[k - 1]! += (e / scale) ** 2;
          s.an[k - 1]! += Math.abs(e / scale);
        }
      }
    }
    const n = windows.size;
    for (const m of methods) {
      const s = se.get(m)!;
      ev.horizons.forEach((h, i) => {
        const avg = (a: Float64Array) => a.subarray(0, h).reduce((x, y) => x + y, 0) / (n * h);
        const got = ev.metrics[m]!;
        for (const [v, ref] of [
          [got.original.mse[i]!, avg(s.no)],
          [got.original.mae[i]!, avg(s.ao)],
          [got.normalised.mse[i]!, avg(s.nn)],
          [got.normalised.mae[i]!, avg(s.an)],
        ] as const) {
          expect(Number.isFinite(v), `${m} h=${h}`).toBe(true);
          // The model's forecasts went through the CSV with full precision: only summation order differs.
          expect(Math.abs(v - ref), `${m} h=${h}: ${v} vs ${ref}`).toBeLessThanOrEqual(1e-9 * Math.abs(ref));
        }
      });
    }

    const charts = readdirSync(join(out, 'charts')).sort();
    // Per series a future and a held-out chart, and one error-by-horizon chart (test/forecast/charts.test.ts).
    expect(charts.length).toBe(2 * data.series.length + 1);
    for (const c of charts) {
      const svg = readFileSync(join(out, 'charts', c), 'utf8');
      expect(xmlProblems(svg), c).toEqual([]);
      expect(svg).toContain(c === 'error-by-horizon.svg' ? '>model<' : 'forecast (model)');
    }
    expect(charts.filter((c) => c.endsWith('-held-out.svg')).every((c) => readFileSync(join(out, 'charts', c), 'utf8').includes('>actual<'))).toBe(true);
  });
});

describe('forecast.js: bad input (exit 2, nothing written)', () => {
  it('flags', async () => {
    for (const [args, msg] of [
      [['--horizon', '0'], /--horizon must be a positive integer, got "0"/],
      [['--horizon', '2.5'], /--horizon must be a positive integer, got "2\.5"/],
      [['--context', '-3'], /--context must be a positive integer/],
      [['--valid-fraction', '1'], /expected a number in \[0, 1\), got "1"/],
      [['--season', '25'], /--season 25 is longer than the context \(24 points\)/],
      [['--nope'], /unknown option '--nope'/],
      [['--data', 'sensor-temperature', '--column', 'x'], /built-in data set with its own columns: leave out --column/],
      [['--data', 'series.parquet'], /neither a data set name .* nor a \.csv/],
    ] as const) {
      const r = await forecast(dir, ['--checkpoint', 'runs/t', '--out', 'bad', ...args]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
    }
    expect(existsSync(join(dir, 'bad'))).toBe(false);
    const r = await forecast(dir, ['--data', 'x.csv']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/required option '--checkpoint <dir>' not specified/);
  });

  it('data: unknown column, missing file, series shorter than the context, no held-out window long enough', async () => {
    writeFileSync(join(dir, 'short.csv'), `t,v\n${Array.from({ length: 20 }, (_, i) => `${i},${Math.sin(i)}`).join('\n')}\n`);
    writeFileSync(join(dir, 'long.csv'), `t,v\n${Array.from({ length: 300 }, (_, i) => `${i},${Math.sin(i / 3)}`).join('\n')}\n`);
    for (const [args, msg] of [
      [['--data', 'long.csv', '--column', 'w'], /column "w" \(data\.source\.column\) not found; the header has: "t", "v"/],
      [['--data', 'missing.csv'], /data file not found: .*missing\.csv/],
      [
        ['--data', 'short.csv', '--column', 'v'],
        /no usable series .*1 shorter than 25 points.*forecast\.js: every series needs --context \+ 1 = 25 points; lower --context/,
      ],
      [
        ['--data', 'long.csv', '--column', 'v', '--evaluate', '--horizon', '20'],
        /no held-out window of 24 \+ 20 points: the longest held-out tail has 30 points .* lower --horizon to at most 6 or raise --valid-fraction/,
      ],
    ] as const) {
      const r = await forecast(dir, ['--checkpoint', 'runs/t', '--out', 'bad', ...args]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });

  it('an --out folder holding other files is left alone; a plain forecast on another CSV works and replaces only its own output', async () => {
    mkdirSync(join(dir, 'mine'), { recursive: true });
    writeFileSync(join(dir, 'mine/notes.txt'), 'keep me');
    let r = await forecast(dir, ['--checkpoint', 'runs/t', '--out', 'mine']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--out .*mine holds files forecast\.js did not write \(notes\.txt\)/);
    expect(readdirSync(join(dir, 'mine'))).toEqual(['notes.txt']);

    r = await forecast(dir, ['--checkpoint', 'runs/t/checkpoints/step-6', '--data', 'long.csv', '--column', 'v', '--horizon', '3', '--out', 'plain']);
    expect(r.status, r.stderr).toBe(0);
    const rows = parse(readFileSync(join(dir, 'plain/forecasts.csv'), 'utf8'), { columns: true }) as Row[];
    expect(rows.map((x) => [x.index, x.step, x.actual])).toEqual([
      ['300', '1', ''],
      ['301', '2', ''],
      ['302', '3', ''],
    ]);
    expect(rows.every((x) => Number.isFinite(Number(x.forecast)))).toBe(true);
    expect(readdirSync(join(dir, 'plain')).sort()).toEqual(['charts', 'forecasts.csv']);
    r = await forecast(dir, ['--checkpoint', 'runs/t', '--data', 'long.csv', '--column', 'v', '--horizon', '2', '--out', 'plain']);
    expect(r.status, r.stderr).toBe(0);
    expect((parse(readFileSync(join(dir, 'plain/forecasts.csv'), 'utf8'), { columns: true }) as Row[]).length).toBe(2);
  });
});
