import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCsv } from '../../src/train/data/csv.ts';
import { loadJson, loadJsonl } from '../../src/train/data/json.ts';
import { parseNumericCell } from '../../src/train/data/series.ts';
import { DataError } from '../../src/train/data/errors.ts';
import { dataErrorOfAsync, FIXTURES } from './helpers.ts';

const csv = (path: string, o: Record<string, unknown> = {}) => loadCsv({ kind: 'csv', path, header: true, delimiter: ',', ...o }, FIXTURES);
const arr = (a: ArrayLike<number>) => Array.from(a);

describe('numeric cells', () => {
  it('parses numbers, missing markers and infinities; rejects the rest', () => {
    expect(parseNumericCell(' 1.5e3 ')).toBe(1500);
    expect(parseNumericCell('-.5')).toBe(-0.5);
    for (const m of ['', '  ', 'NaN', 'nan', 'NA', 'null']) expect(parseNumericCell(m)).toBeNaN();
    expect(parseNumericCell('inf')).toBe(Infinity);
    expect(parseNumericCell('-Infinity')).toBe(-Infinity);
    for (const bad of ['abc', '0x10', '1,5', '12abc', '1 2']) expect(parseNumericCell(bad)).toBeUndefined();
  });
});

describe('CSV loader', () => {
  it('reads a named column with a header, blank lines skipped, empty/NaN cells missing', async () => {
    const s = await csv('header.csv', { column: 'value' });
    expect(s).toHaveLength(1);
    expect(s[0]!.id).toBe('header.csv:value');
    expect(arr(s[0]!.values)).toEqual([1, 2, NaN, NaN, 5, NaN, 7.5, 8, 9, 10]);
  });

  it('picks the first numeric column by default and carries labels', async () => {
    const s = await csv('header.csv', { timeColumn: 'time', labelColumn: 'label' });
    expect(s[0]!.id).toBe('header.csv:value');
    expect(arr(s[0]!.anomalies!)).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('reads columns by 0-based index without a header', async () => {
    const s = await csv('noheader.csv', { header: false, column: 1 });
    expect(arr(s[0]!.values)).toEqual([10, 20, 30, 40, 50]);
    const two = await csv('noheader.csv', { header: false, column: [0, 1] });
    expect(two.map((x) => x.id)).toEqual(['noheader.csv:#0', 'noheader.csv:#1']);
    expect(arr(two[0]!.values)).toEqual([1, 2, 3, 4, 5]);
    expect(arr((await csv('semicolon-noheader.csv', { header: false, delimiter: ';', column: 0 }))[0]!.values)).toEqual([0.5, 1.5, 2.5, 3.5]);
  });

  it('splits long format by id and sorts by time', async () => {
    const s = await csv('long.csv', { column: 'reading', idColumn: 'sensor', timeColumn: 'time' });
    expect(s.map((x) => x.id)).toEqual(['long.csv:reading[B]', 'long.csv:reading[A]']);
    expect(arr(s[0]!.values)).toEqual([10, 20, 30]);
    expect(arr(s[1]!.values)).toEqual([1, 2, 3]);
  });

  it('names file, line and column of a non-numeric cell', async () => {
    const msg = await dataErrorOfAsync(() => csv('bad-cell.csv', { column: 'value' }));
    expect(msg).toContain('bad-cell.csv:4');
    expect(msg).toContain('column "value"');
    expect(msg).toContain('"abc" is not a number');
  });

  it('reports missing, empty, header-only, non-numeric, all-missing and ragged files', async () => {
    const missing = await dataErrorOfAsync(() => csv('nope.csv'));
    expect(missing).toContain(join(FIXTURES, 'nope.csv'));
    expect(missing).toContain('check data.source.path in your config');
    expect(await dataErrorOfAsync(() => csv('empty.csv'))).toContain('empty');
    expect(await dataErrorOfAsync(() => csv('blank.csv'))).toContain('empty');
    expect(await dataErrorOfAsync(() => csv('header-only.csv'))).toContain('no data rows');
    expect(await dataErrorOfAsync(() => csv('text-only.csv'))).toContain('no numeric column');
    expect(await dataErrorOfAsync(() => csv('text-only.csv', { column: 'city' }))).toContain('text-only.csv:2');
    expect(await dataErrorOfAsync(() => csv('all-missing.csv', { column: 'value' }))).toContain('no numeric data');
    expect(await dataErrorOfAsync(() => csv('ragged.csv'))).toContain('ragged.csv:3: row has 1 field(s), expected 2');
  });

  it('reports bad column references', async () => {
    expect(await dataErrorOfAsync(() => csv('header.csv', { column: 'valu' }))).toMatch(/column "valu" .*not found; the header has: "time", "value", "label"/);
    expect(await dataErrorOfAsync(() => csv('header.csv', { column: 7 }))).toContain('out of range');
    expect(await dataErrorOfAsync(() => csv('noheader.csv', { header: false, column: 'x' }))).toContain('header is false');
    expect(await dataErrorOfAsync(() => csv('bad-cell.csv', { column: 'value', timeColumn: 'value' }))).toContain('neither a number nor a date');
  });

  it('a directory is not a data file', async () => {
    await expect(csv('.')).rejects.toThrow(DataError);
  });
});

describe('JSONL loader', () => {
  const jsonl = (path: string, field = 'target') => loadJsonl({ kind: 'jsonl', path, field }, FIXTURES);

  it('reads arrays and objects, skipping blank lines; null and NaN tokens are missing', async () => {
    const s = await jsonl('series.jsonl');
    expect(s).toHaveLength(4);
    expect(s.map((x) => x.id)).toEqual(['series.jsonl:1', 'series.jsonl:3(s2)', 'series.jsonl:4', 'series.jsonl:5']);
    expect(arr(s[0]!.values)).toEqual([1, 2, 3, 4]);
    expect(arr(s[1]!.values)).toEqual([5, 6, NaN, 8]);
    expect(arr(s[2]!.values)).toEqual([11, 12]);
    expect(arr(s[3]!.values)).toEqual([1.5, NaN, Infinity, -Infinity]);
  });

  it('reads another field (Time-MoE "sequence")', async () => {
    expect((await jsonl('sequence.jsonl', 'sequence')).map((x) => x.values.length)).toEqual([3, 2]);
  });

  it('names the line of invalid JSON and of a non-number', async () => {
    const bad = await dataErrorOfAsync(() => jsonl('bad.jsonl'));
    expect(bad).toContain('bad.jsonl:3: not valid JSON');
    const type = await dataErrorOfAsync(() => jsonl('badtype.jsonl'));
    expect(type).toContain('badtype.jsonl:2');
    expect(type).toContain('[1]');
    const field = await dataErrorOfAsync(() => jsonl('nofield.jsonl'));
    expect(field).toContain('nofield.jsonl:1');
    expect(field).toContain('data.source.field');
    expect(await dataErrorOfAsync(() => jsonl('empty.csv'))).toContain('empty');
    expect(await dataErrorOfAsync(() => jsonl('missing.jsonl'))).toContain('check data.source.path');
  });
});

describe('JSON loader', () => {
  const json = (path: string) => loadJson({ kind: 'json', path, field: 'target' }, FIXTURES);

  it('reads an array of series, or one flat array', async () => {
    const s = await json('series.json');
    expect(s.map((x) => x.id)).toEqual(['series.json[0]', 'series.json[1]', 'series.json[2]']);
    expect(arr(s[1]!.values)).toEqual([4, 5, 6, 7]);
    expect(arr(s[2]!.values)).toEqual([NaN, 8]);
    expect(arr((await json('flat.json'))[0]!.values)).toEqual([1, 2, 3, 4, 5]);
  });

  it('reports the series index of a bad element and a wrong top level', async () => {
    expect(await dataErrorOfAsync(() => json('badtype.json'))).toContain('series [1]');
    expect(await dataErrorOfAsync(() => json('object.json'))).toContain('top level must be an array');
    expect(await dataErrorOfAsync(() => json('bad.jsonl'))).toContain('not valid JSON');
  });
});
