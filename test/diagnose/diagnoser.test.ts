/**
 * The incremental API: push() reports a finding once when it is first detected and again only
 * when it changes; records as the run holds them (real NaN) or as the file has them ("NaN");
 * routing of skipped steps and null / NaN routing statistics are ignored.
 */
import { describe, expect, it } from 'vitest';
import { Diagnoser, diagnoseRun } from '../../src/diagnose/diagnoser.ts';
import { formatChanges, formatFinding, jsonText, toJson } from '../../src/diagnose/format.ts';
import { parseMetricsText, toRecord } from '../../src/diagnose/records.ts';
import type { FindingChange } from '../../src/diagnose/types.ts';
import { fixture, ids } from './helpers.ts';

function pushAll(name: string): { d: Diagnoser; changes: { step: number; change: FindingChange }[] } {
  const f = fixture(name);
  const d = new Diagnoser(f.header);
  const changes: { step: number; change: FindingChange }[] = [];
  for (const r of f.raw) for (const c of d.push(r)) changes.push({ step: r.step as number, change: c });
  return { d, changes };
}

/** A copy of a logged record with the file's "NaN" spellings turned into real numbers (the run's in-memory record). */
function inMemory(raw: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(raw), (_k, v: unknown) => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v)) as Record<
    string,
    unknown
  >;
}

describe('Diagnoser', () => {
  it('reports each finding once, at the step it is detected (the first report)', () => {
    const { d, changes } = pushAll('classify-head-std-1.0');
    expect(changes.map((c) => [c.step, c.change.change, c.change.finding.id])).toEqual([
      [0, 'new', 'bad-start'],
      [5, 'new', 'clip-limited'],
    ]);
    expect(d.findings()).toEqual(diagnoseRun(fixture('classify-head-std-1.0').header, fixture('classify-head-std-1.0').records).findings);
  });

  it('the default run: no change is ever reported', () => {
    expect(pushAll('default-small-moe').changes).toEqual([]);
  });

  it('a persistent collapse is reported once, 50 clean steps after it began', () => {
    const { changes } = pushAll('aux-off-200-steps');
    expect(changes.map((c) => [c.step, c.change.change, c.change.finding.id])).toEqual([[88, 'new', 'routing-collapse@layer0']]);
    expect(changes[0]!.change.finding.firstStep).toBe(39);
  });

  it('reports a change of severity or status, and a resolution, once each', () => {
    const d = new Diagnoser({ config: { model: { task: 'forecast' }, optim: { clipNorm: 1, lr: 1e-3 } } });
    const step = (s: number, clipped: number) => ({
      kind: 'train',
      step: s,
      loss: 1 / s,
      lossMain: 1 / s,
      aux: 0,
      z: 0,
      lr: 1e-3,
      auxFactor: 0,
      gradNorm: 1 / (1 - clipped),
      gradNormPostClip: 1,
      clipCoef: 1 - clipped,
      clippedFraction: clipped,
      skipped: false,
      nonFinite: [],
      routing: [],
    });
    const log: string[] = [];
    let s = 1;
    for (; s <= 10; s++) for (const c of d.push(step(s, 0.95))) log.push(`${s} ${c.change} ${c.finding.severity} ${c.finding.status}`);
    for (; s <= 20; s++) for (const c of d.push(step(s, 0.995))) log.push(`${s} ${c.change} ${c.finding.severity} ${c.finding.status}`);
    for (; s <= 60; s++) for (const c of d.push(step(s, 0))) log.push(`${s} ${c.change} ${c.finding.severity} ${c.finding.status}`);
    // Error once the window's median reaches 0.97 (step 20); resolved a whole window (20 clean steps) after it last held (step 25).
    expect(log).toEqual(['5 new warning ongoing', '20 changed error ongoing', '45 resolved error resolved']);
    const resolved = formatChanges([{ change: 'resolved', finding: d.findings()[0]! }]);
    expect(resolved[0]).toMatch(/^\[diagnose\] resolved: Clipping removes most of every update \(last seen at step \d+\)$/);
  });

  it('reads the run\'s in-memory records (real NaN) like the file\'s ("NaN")', () => {
    for (const name of ['exp-nan-guards-off', 'exp-nan-guards-on', 'f16-collapse']) {
      const f = fixture(name);
      const a = diagnoseRun(f.header, f.raw);
      const b = diagnoseRun(f.header, f.raw.map(inMemory));
      expect(b.findings).toEqual(a.findings);
      expect(b.notes).toEqual(a.notes);
    }
  });

  it('ignores the routing of skipped steps, and null / NaN routing statistics', () => {
    const f = fixture('exp-nan-guards-on');
    // The engine will write routing of a skipped step as null / "NaN" instead of a made-up distribution.
    const nulled = f.raw.map((r) =>
      r.skipped ? { ...r, routing: (r.routing as object[]).map((_l, i) => ({ layer: i, load: null, entropy: null, maxShare: 'NaN', switchLoss: null })) } : r,
    );
    expect(diagnoseRun(f.header, nulled).findings).toEqual([]);
    const noRouting = f.raw.map((r) => (r.skipped ? { ...r, routing: null } : r));
    expect(diagnoseRun(f.header, noRouting).findings).toEqual([]);
    // Guards off: the NaN steps logged made-up routing (layer 1: one expert pair, entropy 0): no routing finding.
    expect(ids(diagnoseRun(fixture('exp-nan-guards-off').header, fixture('exp-nan-guards-off').raw))).toEqual(['divergence', 'non-finite']);
    // 60 skipped steps whose (invalid) routing reads as a total collapse are not a collapse.
    const base = f.raw.find((r) => r.kind === 'train' && r.skipped)!;
    const collapsed = [{ layer: 0, load: [0.5, 0.5, 0, 0], entropy: 0, maxShare: 0.5, switchLoss: 2 }];
    const d = new Diagnoser({ ...f.header, config: { ...(f.header.config as object), stability: { guards: true, maxConsecutiveBadSteps: 1000 } } });
    for (let s = 1; s <= 60; s++) d.push({ ...base, step: s, routing: collapsed });
    expect(d.findings().map((x) => x.kind)).toEqual(['non-finite']);
  });

  it('the same collapse on clean steps is a finding', () => {
    const f = fixture('exp-nan-guards-on');
    const clean = f.raw.find((r) => r.kind === 'train' && !r.skipped)!;
    const d = new Diagnoser(f.header);
    for (let s = 1; s <= 60; s++)
      d.push({
        ...clean,
        step: s,
        loss: 0.5 / s,
        lossMain: 0.5 / s,
        routing: [{ layer: 0, load: [0.5, 0.5, 0, 0], entropy: 1.38, maxShare: 0.5, switchLoss: 1.04 }],
      });
    expect(d.findings().map((x) => x.id)).toEqual(['routing-collapse@layer0']);
  });

  it('ignores unknown record kinds; a malformed record is left out and counted, never thrown (it must not stop a run)', () => {
    const d = new Diagnoser({});
    expect(d.push({ kind: 'event', step: 3 })).toEqual([]);
    expect(d.push({ kind: 'train', step: 'x' })).toEqual([]);
    expect(d.progress()).toMatchObject({ rejected: 1, lastRejection: 'train record: "step" must be an integer', trainSteps: 0 });
    expect(toRecord({ kind: 'valid', step: 1, loss: 'NaN', lossMain: 1 })).toMatchObject({ kind: 'valid', loss: NaN });
    expect(toRecord([1])).toEqual({ error: 'expected a JSON object' });
  });

  it('the summary names what it could not judge, so silence is not mistaken for health', () => {
    const d = new Diagnoser({});
    expect(d.summary()).toBe(
      'diagnosis: no findings over no train steps (0 validations)\n  not judged: the start (header.json has no baseline); the data (header.json has no data statistics)',
    );
    // A classifier's baseline comes from the config (ln C): nothing missing but the data.
    expect(new Diagnoser(fixture('classify-head-std-1.0').header).unjudged()).toEqual(['the data (header.json has no data statistics)']);
  });

  it('formats a finding as one block with evidence, cause, fix and experiment; JSON keeps numbers', () => {
    const d = diagnoseRun(fixture('classify-head-std-1.0').header, fixture('classify-head-std-1.0').records);
    const text = formatFinding(d.findings[0]!);
    expect(text.split('\n')[0]).toBe('[diagnose] ERROR  Initial loss far above ln C: an overconfident classification head  (steps 0-20, ongoing)');
    expect(text).toMatch(/\n  - validation cross-entropy before training: 16\.15, 2\.87x the no-information baseline 5\.635/);
    expect(text).toMatch(/\n  cause: the classification head is initialised with std 1 /);
    expect(text).toMatch(/\n  fix: --set model\.init\.headStd=0\.02  \(/);
    expect(text).toMatch(/\n  reproduce: npm run experiment -- head-init$/);
    const json = JSON.parse(jsonText(toJson('run', d))) as { findings: { id: string; evidence: { values: Record<string, unknown> }[] }[]; steps: object };
    expect(json.findings.map((f) => f.id)).toEqual(['bad-start', 'clip-limited']);
    expect(json.steps).toEqual({ first: 1, last: 20, train: 20, valid: 2 });
    expect(typeof json.findings[0]!.evidence[0]!.values.ratio).toBe('number');
  });

  it('parseMetricsText: a cut last line is left out, a bad line elsewhere names file:line', () => {
    const text = '{"kind":"valid","step":0,"loss":1,"lossMain":1,"horizons":[]}\n{"kind":"train","st';
    expect(parseMetricsText(text, 'm.jsonl')).toMatchObject({ partialLastLine: true, records: [{ kind: 'valid' }] });
    expect(() => parseMetricsText('{"kind":"train","st\n{}\n', 'm.jsonl')).toThrow(/^m\.jsonl:1: not valid JSON/);
    expect(() => parseMetricsText('{"kind":"train","step":1}\n', 'm.jsonl')).toThrow(/^m\.jsonl:1: train record at step 1: "loss" must be a number/);
  });
});
