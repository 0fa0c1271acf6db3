/**
 * The data detectors on statistics computed the way the run will (src/train/data loaders, then
 * summarizeWindows over the training windows): a real data set is clean, and generated series
 * with flat stretches, spikes or too few points get their finding.
 */
import { describe, expect, it } from 'vitest';
import { summarizeWindows, sampleIndices } from '../../src/diagnose/data-stats.ts';
import { diagnosisHeaderFields } from '../../src/diagnose/header-fields.ts';
import { Diagnoser } from '../../src/diagnose/diagnoser.ts';
import type { DataStats, Finding } from '../../src/diagnose/types.ts';
import { loadData } from '../../src/train/data/index.ts';
import { parseDataConfig } from '../../src/train/data/config.ts';
import { parseConfig } from '../../src/train/config.ts';
import { fixture, DEFAULT_DATA } from './helpers.ts';

/** header.json `data` as the run would write it. */
async function statsOf(data: unknown): Promise<DataStats> {
  const cfg = parseDataConfig(data);
  const d = await loadData(cfg, { cwd: process.cwd(), seed: 0 });
  const windowStats = summarizeWindows(sampleIndices(d.train.length).map((i) => d.train.window(i)));
  return { ...d.report, normalize: cfg.normalize, windowStats };
}

/** The default run's header with other data (and schedule) statistics. */
function findingsFor(data: DataStats, schedule: Record<string, number> = {}): Finding[] {
  const f = fixture('default-small-moe');
  const config = structuredClone(f.header.config) as { schedule: Record<string, number> };
  Object.assign(config.schedule, schedule);
  const out = new Diagnoser({ ...f.header, config, data }).findings();
  // Every proposed --set is a valid change of this config.
  for (const x of out) expect(() => parseConfig(config, x.id, x.fix.sets)).not.toThrow();
  return out;
}

describe('data detectors', () => {
  it("the default run's data (sensor-temperature) is clean, and the whole default run stays clean with it", async () => {
    const s = await statsOf(DEFAULT_DATA);
    expect(s.trainWindows).toBe(1054);
    expect(s.windowStats!.windows).toBe(1054);
    expect(s.windowStats!.constantWindows).toBe(0);
    expect(s.windowStats!.extremeWindows).toBe(0);
    const f = fixture('default-small-moe');
    const d = new Diagnoser({ ...f.header, data: s });
    for (const r of f.records) d.push(r);
    expect(d.findings()).toEqual([]);
    expect(d.unjudged()).toEqual(['the start (header.json has no baseline)']);
  });

  it('flat series: constant windows (error when most are)', async () => {
    const s = await statsOf({ source: { kind: 'synthetic', series: 4, length: 400, seasonality: [], noise: 0 }, contextLength: 32 });
    expect(s.windowStats!.constantWindows).toBe(s.windowStats!.windows);
    const f = findingsFor(s).find((x) => x.kind === 'data-constant-windows')!;
    expect(f.severity).toBe('error');
    expect(f.evidence[0]!.values.share).toBe(1);
    expect(f.firstStep).toBe(0);
  });

  it("spikes far beyond a window's spread: extreme normalised values", async () => {
    const s = await statsOf({
      source: { kind: 'synthetic', series: 4, length: 2000, noise: 0.01, anomalies: { rate: 0.01, magnitude: 100 } },
      contextLength: 32,
    });
    expect(s.windowStats!.maxAbsLabel).toBeGreaterThan(50);
    const f = findingsFor(s).find((x) => x.kind === 'data-extreme-values')!;
    expect(f).toBeDefined();
    expect(f.fix.sets).toEqual(['data.normalize=series']);
    // The same series without spikes: no finding.
    const clean = await statsOf({ source: { kind: 'synthetic', series: 4, length: 2000, noise: 0.01 }, contextLength: 32 });
    expect(findingsFor(clean).map((x) => x.kind)).toEqual([]);
  });

  it('too few windows for the batch, too many passes, no validation', async () => {
    const s = await statsOf({ source: { kind: 'synthetic', series: 1, length: 200 }, contextLength: 64, validFraction: 0 });
    expect(s.trainWindows).toBeLessThan(16);
    const f = findingsFor(s).find((x) => x.kind === 'data-too-few-windows')!;
    expect(f.severity).toBe('error');
    expect(f.evidence[0]!.text).toMatch(/every step repeats windows/);
    expect(f.evidence[0]!.text).toMatch(/passes over/);
    expect(f.evidence[0]!.text).toMatch(/no validation windows/);
    expect(f.fix.sets[0]).toMatch(/^schedule\.microBatch=\d+$/);
    // Enough windows for a batch, but 300 steps x 16 = 4800 draws of 40 windows.
    const few = await statsOf({ source: { kind: 'synthetic', series: 1, length: 1400 }, contextLength: 32, stride: 32 });
    const g = findingsFor(few).find((x) => x.kind === 'data-too-few-windows')!;
    expect(g.severity).toBe('warning');
    expect(g.evidence[0]!.values.epochs as number).toBeGreaterThan(100);
    expect(findingsFor(few, { steps: 100 }).map((x) => x.kind)).toEqual([]);
  });

  it('summarizeWindows: counts, maxima and quantiles', () => {
    const w = summarizeWindows([
      { inputs: [0, 0, 0], labels: [0, 0, 0], scale: 1 },
      { inputs: [-1, 0, 1], labels: [0, 1, 80], scale: 0.5 },
      { inputs: [1, 2, 3], labels: [2, 3, -4], scale: 2 },
    ]);
    expect(w).toMatchObject({ windows: 3, constantWindows: 1, maxAbsInput: 3, maxAbsLabel: 80, extremeWindows: 1, scale: { min: 0.5, median: 1, max: 2 } });
    expect(sampleIndices(10, 4)).toEqual([0, 2, 5, 7]);
    expect(sampleIndices(3)).toEqual([0, 1, 2]);
  });

  it('a run on spiky data: the loss spikes are traced to the extreme windows the data statistics show', async () => {
    const f = fixture('loss-spikes');
    const alone = new Diagnoser(f.header);
    for (const r of f.records) alone.push(r);
    expect(alone.findings().map((x) => x.id)).toEqual(['loss-spikes']);
    expect(alone.findings()[0]!.fix.sets).toEqual(['optim.lr=0.000333']);
    const data = await statsOf((f.header.config as { data: unknown }).data);
    expect(data.windowStats!.extremeWindows).toBeGreaterThan(0);
    const d = new Diagnoser({ ...f.header, data });
    for (const r of f.records) d.push(r);
    expect(
      d
        .findings()
        .map((x) => x.id)
        .sort(),
    ).toEqual(['data-extreme-values', 'loss-spikes']);
    const spikes = d.findings().find((x) => x.kind === 'loss-spikes')!;
    expect(spikes.cause).toMatch(/training windows? holds? normalised values beyond 50/);
    expect(spikes.fix.sets).toEqual(['data.normalize=series']);
    expect(spikes.evidence[0]!.values).toMatchObject({ spikes: 2, worstStep: 129 });
  });

  it('diagnosisHeaderFields: the default run with its real baseline and data statistics is judged in full, and clean', async () => {
    const f = fixture('default-small-moe');
    const cfg = f.header.config as {
      data: unknown;
      model: { task: 'forecast'; horizons: number[] };
      loss: { huberDelta: number };
      schedule: { microBatch: number };
      logging: { validBatches: number };
    };
    const dataCfg = parseDataConfig(cfg.data);
    const data = await loadData(dataCfg, { cwd: process.cwd(), seed: 0 });
    const fields = diagnosisHeaderFields({
      task: cfg.model.task,
      horizons: cfg.model.horizons,
      huberDelta: cfg.loss.huberDelta,
      normalize: dataCfg.normalize,
      report: data.report,
      validBatches: () => [...data.valid.batches(cfg.schedule.microBatch)].slice(0, cfg.logging.validBatches || undefined),
      train: data.train,
    });
    expect(fields.baseline!.loss).toBeCloseTo(0.47882, 4); // = the zero-head run's step-0 validation
    expect(fields.data).toMatchObject({
      trainWindows: 1054,
      validWindows: 108,
      normalize: 'window',
      windowStats: { windows: 1054, constantWindows: 0, extremeWindows: 0 },
    });
    const d = new Diagnoser({ ...f.header, ...fields });
    for (const r of f.records) d.push(r);
    expect(d.findings()).toEqual([]);
    expect(d.unjudged()).toEqual([]);
    expect(d.summary()).toBe('diagnosis: no findings over steps 1-300 (4 validations)');
    // The header survives JSON (header.json) unchanged in what the diagnosis reads.
    expect(new Diagnoser(JSON.parse(JSON.stringify({ ...f.header, ...fields }))).ctx.baseline).toEqual(fields.baseline);
  });
});
