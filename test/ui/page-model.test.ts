/**
 * The page's pure parts, in Node: smoothing (TensorBoard's debiased EMA), the legend's value at or
 * before the cursor, the heatmap's step-to-column mapping when zoomed (no grey column for a
 * logged step), seconds per step and ETA, the page's own diagnosis of a recorded run (the same
 * findings as src/diagnose on the file, also when the header comes after the records), which
 * panels are hidden for a run, and one colour per run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnoseRun } from '../../src/diagnose/diagnoser.ts';
import { parseMetricsText } from '../../src/diagnose/records.ts';
import type { RunHeaderInput } from '../../src/diagnose/types.ts';
import { parseRecord, type MetricsRecord } from '../../src/report/metrics-reader.ts';
import { cellColumns } from '../../src/ui/page/heatmap.ts';
import { atOrBefore, withAlpha } from '../../src/ui/page/line-chart.ts';
import { PANELS, hiddenReason, panelEvents, panelSeries, runColor } from '../../src/ui/page/panels.ts';
import { ema } from '../../src/ui/page/smooth.ts';
import { Store } from '../../src/ui/page/store.ts';
import { timing } from '../../src/ui/page/timing.ts';
import type { UiHeader } from '../../src/ui/protocol.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'diagnose');

/** A recorded run (test/fixtures/diagnose), its records completed to the logger's full shape (the fixtures drop z and gradNormPostClip). */
function recorded(name: string): { header: UiHeader; text: string; records: MetricsRecord[] } {
  const text = readFileSync(join(FIXTURES, name, 'metrics.jsonl'), 'utf8');
  const header = JSON.parse(readFileSync(join(FIXTURES, name, 'header.json'), 'utf8')) as UiHeader;
  const records = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const raw = JSON.parse(l) as Record<string, unknown>;
      const post = Number(raw.gradNorm) * Number(raw.clipCoef);
      const full = raw.kind === 'train' ? { z: 0, gradNormPostClip: Number.isFinite(post) ? post : 'NaN', ...raw } : raw;
      const r = parseRecord(full);
      if (r === null || 'error' in r) throw new Error(`${name}: ${r === null ? 'unknown kind' : r.error}`);
      return r;
    });
  return { header, text, records };
}

function storeOf(runs: { label: string; header: UiHeader | null; records: MetricsRecord[]; headerLast?: boolean }[]): Store {
  const s = new Store();
  runs.forEach((r, run) => {
    s.apply({ type: 'run', run, label: r.label, dir: r.label, live: false });
    if (r.header && !r.headerLast) s.apply({ type: 'header', run, header: r.header });
    for (const record of r.records) s.apply({ type: 'record', run, record });
    if (r.header && r.headerLast) s.apply({ type: 'header', run, header: r.header });
    s.runs[run]!.diagnosis.drain();
  });
  return s;
}

describe('smoothing', () => {
  it('is the debiased EMA TensorBoard draws; weight 0 is the raw line', () => {
    const v = [1, 2, 3, 4];
    expect(ema(v, 0)).toEqual(v);
    const w = 0.6;
    const out = ema(v, w);
    // First point: debiased to the value itself; then last = last·w + (1-w)·v, divided by 1 - w^n.
    expect(out[0]).toBeCloseTo(1, 12);
    let last = 0;
    v.forEach((x, i) => {
      last = last * w + (1 - w) * x;
      expect(out[i]).toBeCloseTo(last / (1 - w ** (i + 1)), 12);
    });
    expect(out[3]!).toBeLessThan(4);
  });

  it('keeps gaps: a non-finite (null) point stays a gap and is left out of the average; an unlogged point stays unlogged', () => {
    const out = ema([1, null, 3, undefined, 5], 0.5);
    expect(out[1]).toBeNull();
    expect(out[3]).toBeUndefined();
    expect(out[2]).toBeCloseTo((0.25 * 1 + 0.5 * 3) / 0.75, 12);
    expect(ema([NaN, 1], 0.5)[0]).toBeNaN();
  });

  it('caps the weight at 0.99', () => {
    expect(ema([1, 2], 5)).toEqual(ema([1, 2], 0.99));
  });
});

describe('the legend shows the value at or before the cursor', () => {
  it('never a later one', () => {
    // Validation at steps 0 and 100 (index 0 and 4) on the train steps' x.
    const valid = [0.5, undefined, undefined, undefined, 0.3];
    expect(atOrBefore(valid, 0)).toBe(0);
    expect(atOrBefore(valid, 3)).toBe(0);
    expect(atOrBefore(valid, 4)).toBe(4);
    expect(atOrBefore([undefined, undefined, 1], 1)).toBeNull();
    // A non-finite value (null on the plot) is a value: the legend prints NaN, not the one before.
    expect(atOrBefore([1, null], 1)).toBe(1);
  });
});

describe('heatmap columns', () => {
  const steps = Array.from({ length: 100 }, (_, i) => i + 1);

  it('zoomed in, every pixel column inside a logged step shows that step (the old mapping left grey columns)', () => {
    for (const [lo, hi, px] of [
      [40.3, 100.7, 900],
      [3.3, 17.6, 1300],
      [50.2, 56.9, 400],
      [0.5, 100.5, 1100],
      [93.7, 96.2, 333],
    ] as const) {
      const span = hi - lo;
      const c = cellColumns(steps, lo, span, px);
      expect(c.columns).toBe(px);
      for (let k = 0; k < px; k++) {
        const centre = lo + ((k + 0.5) / px) * span;
        const step = Math.round(centre);
        const logged = step >= 1 && step <= 100;
        const shown = steps.slice(c.from[k], c.to[k]);
        expect(shown, `zoom ${lo}-${hi} column ${k} (x ${centre.toFixed(2)})`).toEqual(logged ? [step] : []);
      }
    }
    // The mapping the heatmap had: ceil(span) + 1 columns, each step into floor((s - lo) / span · cols).
    const lo = 40.3;
    const span = 60.4;
    const old = Math.ceil(span) + 1;
    const used = new Set(steps.filter((s) => s >= lo && s <= lo + span).map((s) => Math.floor(((s - lo) / span) * old)));
    expect(used.size).toBeLessThan(old - 1); // columns with no step: the grey stripes of issue 26
  });

  it('zoomed out (more steps than pixels), every step is in exactly one column and no column is empty', () => {
    const many = Array.from({ length: 5000 }, (_, i) => i + 1);
    const c = cellColumns(many, 0.5, 5000, 700);
    const seen: number[] = [];
    for (let k = 0; k < c.columns; k++) {
      expect(c.to[k]! - c.from[k]!, `column ${k}`).toBeGreaterThan(0);
      seen.push(...many.slice(c.from[k], c.to[k]));
    }
    expect(seen).toEqual(many);
  });

  it('a step that was not logged stays grey', () => {
    const gappy = [1, 2, 3, 7, 8];
    const c = cellColumns(gappy, 0.5, 8, 80);
    for (let k = 0; k < 80; k++) {
      const step = Math.round(0.5 + ((k + 0.5) / 80) * 8);
      expect(gappy.slice(c.from[k], c.to[k])).toEqual(gappy.includes(step) ? [step] : []);
    }
  });
});

describe('seconds per step and ETA', () => {
  it('are the median of the last steps’ ms and the steps left times it', () => {
    const header: UiHeader = { config: { schedule: { steps: 100 } } };
    const ms = [900, 100, 200, 300, 250];
    const train = { step: [1, 2, 3, 4, 5], ms } as unknown as Parameters<typeof timing>[0]['train'];
    const t = timing({ header, train });
    expect(t.secondsPerStep).toBeCloseTo(0.25, 12);
    expect(t.totalSteps).toBe(100);
    expect(t.etaSeconds).toBeCloseTo(95 * 0.25, 9);
    expect(timing({ header: null, train }).etaSeconds).toBeNull();
    expect(timing({ header, train: { step: [], ms: [] } as unknown as typeof train }).secondsPerStep).toBeNull();
  });
});

describe('the page’s diagnosis', () => {
  it('finds what src/diagnose finds in the file: bad start and clipping on the head-std-1.0 classifier', () => {
    const r = recorded('classify-head-std-1.0');
    const expected = diagnoseRun(r.header as RunHeaderInput, parseMetricsText(r.text).records).findings;
    expect(expected.map((f) => f.id)).toContain('bad-start');
    for (const headerLast of [false, true]) {
      const s = storeOf([{ label: 'a', header: r.header, records: r.records, headerLast }]);
      const got = s.runs[0]!.diagnosis.findings();
      expect(
        got.map((f) => [f.id, f.severity, f.firstStep, f.status]),
        `header ${headerLast ? 'after' : 'before'} the records`,
      ).toEqual(expected.map((f) => [f.id, f.severity, f.firstStep, f.status]));
    }
    // Judged in slices, and first without a header (it comes late): the header's judgement replaces that one.
    const s = storeOf([{ label: 'a', header: null, records: r.records }]);
    const d = s.runs[0]!.diagnosis;
    expect(d.unjudged().join(' ')).toMatch(/no baseline/);
    s.apply({ type: 'header', run: 0, header: r.header });
    expect(d.pending).toBe(r.records.length);
    while (d.drain(0) > 0);
    expect(d.findings().map((f) => f.id)).toEqual(expected.map((f) => f.id));
    expect(d.unjudged().join(' ')).not.toMatch(/no baseline/);
  });

  it('puts a marker at each finding’s first step on the loss chart, and layer findings on the routing charts only', () => {
    const r = recorded('exp-router-std-1.0');
    const s = storeOf([{ label: 'a', header: r.header, records: r.records }]);
    const fs = s.runs[0]!.diagnosis.findings();
    const layered = fs.filter((f) => f.layer !== null);
    expect(layered.length).toBeGreaterThan(0);
    const panel = (id: string) => PANELS.find((p) => p.id === id)!;
    expect(panelEvents(panel('loss'), s).map((e) => e.x)).toEqual(fs.map((f) => f.firstStep));
    expect(panelEvents(panel('entropy'), s).map((e) => e.label)).toEqual(layered.map((f) => `${f.kind} L${f.layer}`));
    expect(panelEvents(panel('lr'), s)).toEqual([]);
  });

  it('a reset (a resume cut the log) starts the diagnosis over', () => {
    const r = recorded('classify-head-std-1.0');
    const s = storeOf([{ label: 'a', header: r.header, records: r.records }]);
    s.apply({ type: 'reset', run: 0 });
    expect(s.runs[0]!.diagnosis.findings()).toEqual([]);
    expect(s.runs[0]!.train.step).toEqual([]);
  });

  it('a run without header.json is still judged (what it lacks is named)', () => {
    const r = recorded('exp-nan-guards-on');
    const s = storeOf([{ label: 'a', header: null, records: r.records }]);
    expect(s.runs[0]!.diagnosis.unjudged().join(' ')).toMatch(/no baseline/);
    expect(s.runs[0]!.diagnosis.notes().length + s.runs[0]!.diagnosis.findings().length).toBeGreaterThan(0);
  });
});

describe('panels', () => {
  const lossScale = PANELS.find((p) => p.id === 'loss-scale')!;

  it('hide the loss scale of an f32 run and say why; show it for an f16 run', () => {
    const f32 = recorded('default-small-moe');
    const s32 = storeOf([{ label: 'f32', header: f32.header, records: f32.records }]);
    expect(hiddenReason(lossScale, s32, panelSeries(lossScale, s32))).toMatch(/no overflow skip \(f32 activations\)/);
    const f16 = recorded('f16-overflows');
    const s16 = storeOf([{ label: 'f16', header: f16.header, records: f16.records }]);
    expect(hiddenReason(lossScale, s16, panelSeries(lossScale, s16))).toBeNull();
    // Overlaid, the panel tells something about one of them: shown.
    const both = storeOf([
      { label: 'f32', header: f32.header, records: f32.records },
      { label: 'f16', header: f16.header, records: f16.records },
    ]);
    expect(hiddenReason(lossScale, both, panelSeries(lossScale, both))).toBeNull();
    // The loss chart is never hidden.
    const loss = PANELS.find((p) => p.id === 'loss')!;
    expect(hiddenReason(loss, s32, panelSeries(loss, s32))).toBeNull();
  });

  it('give each run one colour on every chart, named in every legend entry, its metrics told apart by dash', () => {
    const a = recorded('exp-router-std-1.0');
    const b = recorded('exp-router-std-0.006');
    const s = storeOf([
      { label: 'runs/a', header: a.header, records: a.records },
      { label: 'runs/b', header: b.header, records: b.records },
    ]);
    for (const p of PANELS) {
      const series = panelSeries(p, s);
      for (const x of series) {
        const run = x.label.endsWith(' · runs/a') ? 0 : x.label.endsWith(' · runs/b') ? 1 : -1;
        expect(run, `${p.id}: ${x.label} names its run`).toBeGreaterThanOrEqual(0);
        expect(x.color, `${p.id}: ${x.label}`).toBe(runColor(run));
      }
      const ofA = series.filter((x) => x.label.endsWith('runs/a'));
      const dashes = ofA.slice(0, 5).map((x) => JSON.stringify(x.dash ?? null));
      expect(new Set(dashes).size, `${p.id}: one dash per metric`).toBe(dashes.length);
    }
    expect(runColor(0)).not.toBe(runColor(1));
    // One run: a colour per metric (layer, head).
    const one = storeOf([{ label: 'runs/a', header: a.header, records: a.records }]);
    const entropy = panelSeries(
      PANELS.find((p) => p.id === 'entropy')!,
      one,
    );
    expect(new Set(entropy.map((x) => x.color)).size).toBe(entropy.length);
  });

  it('faint colours keep the hue', () => {
    expect(withAlpha('#1f77b4', 0.2)).toBe('rgba(31, 119, 180, 0.2)');
    expect(withAlpha('hsl(10, 55%, 42%)', 0.2)).toBe('hsla(10, 55%, 42%, 0.2)');
  });
});
