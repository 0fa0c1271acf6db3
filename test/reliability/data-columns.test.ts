/**
 * Issue 23, data: which CSV column a run trains on when data.source.column is not given. A time or
 * index column (named like one, dates, or increasing evenly every row) is never the default, and
 * the data report always says which column was used, which were skipped and why, and how to choose.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCsv } from '../../src/train/data/csv.ts';
import { isTimeName } from '../../src/train/data/csv-rows.ts';
import { loadData } from '../../src/train/data/load.ts';
import { parseDataConfig } from '../../src/train/data/config.ts';
import { runCli, scratch, tinyConfig, writeConfig } from '../train/cli-helpers.ts';

const STACK = /^\s{4}at /m;
const work = mkdtempSync(join(tmpdir(), 'wmoe-cols-'));
const rows = (n: number, row: (i: number) => string) => Array.from({ length: n }, (_, i) => `${row(i)}\n`).join('');
const wave = (i: number) => Math.sin(i / 5).toFixed(4);

function file(name: string, text: string): string {
  writeFileSync(join(work, name), text);
  return name;
}

async function load(name: string, source: Record<string, unknown> = {}) {
  const cfg = parseDataConfig({ source: { kind: 'csv', path: name, ...source }, contextLength: 8 });
  return loadData(cfg, { cwd: work });
}

describe('the default value column (loadData)', () => {
  it('time,value: trains on value, says time was skipped by its name', async () => {
    const d = await load(file('tv.csv', `time,value\n${rows(100, (i) => `${i},${wave(i)}`)}`));
    expect(d.series.map((s) => s.id)).toEqual(['tv.csv:value']);
    expect(d.series[0]!.values[3]).toBeCloseTo(Math.sin(3 / 5), 4);
    expect(d.report.notes).toEqual([
      'columns: used "value" (index 1), the first value column; skipped as time/index: "time" (index 0, named like one). To pick another column, set data.source.column (a name or 0-based index)',
    ]);
  });

  it('an unnamed evenly spaced column (pandas index, epoch seconds): skipped, with the step it has', async () => {
    const d = await load(file('epoch.csv', `n,load\n${rows(100, (i) => `${1_700_000_000 + 60 * i},${wave(i)}`)}`));
    expect(d.series.map((s) => s.id)).toEqual(['epoch.csv:load']);
    expect(d.report.notes[0]).toMatch(
      /^columns: used "load" \(index 1\), the first value column; skipped as time\/index: "n" \(index 0, it increases by 60 every row in its first 64 rows\)/,
    );
    const pandas = await load(file('pandas.csv', `,value\n${rows(30, (i) => `${i},${wave(i)}`)}`));
    expect(pandas.series.map((s) => s.id)).toEqual(['pandas.csv:value']);
    expect(pandas.report.notes[0]).toContain('skipped as time/index: "" (index 0, no name: an index column)');
  });

  it('no header: an evenly spaced first column is an index, the next one the values', async () => {
    const d = await load(
      file(
        'nohead.csv',
        rows(50, (i) => `${i},${wave(i)}`),
      ),
      { header: false },
    );
    expect(d.series.map((s) => s.id)).toEqual(['nohead.csv:#1']);
    expect(d.report.notes[0]).toMatch(/^columns: used #1, the first value column; skipped as time\/index: #0 \(it increases by 1 every row\)/);
  });

  it('dates and several value columns: the first value column, the others named with the list to train on each', async () => {
    const d = await load(
      file(
        'multi.csv',
        `Date Time,temp,humidity,city\n${rows(60, (i) => `2024-01-${String(1 + Math.floor(i / 24)).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:00,${wave(i)},${(i % 7) / 7},Oslo`)}`,
      ),
    );
    expect(d.series.map((s) => s.id)).toEqual(['multi.csv:temp']);
    expect(d.report.notes[0]).toBe(
      'columns: used "temp" (index 1), the first value column; skipped as time/index: "Date Time" (index 0, named like one); not used: "humidity" (index 2); text, not used: "city" (index 3). ' +
        'To train on each value column as its own series, set data.source.column to ["temp","humidity"]; to pick one, set it to its name or 0-based index',
    );
    const each = await load('multi.csv', { column: ['temp', 'humidity'] });
    expect(each.series.map((s) => s.id)).toEqual(['multi.csv:temp', 'multi.csv:humidity']);
    expect(each.report.notes).toEqual(['columns: used "temp" (index 1), "humidity" (index 2) (data.source.column)']);
  });

  it('a date column not named like one is told by its cells', async () => {
    const d = await load(file('when.csv', `when,v\n${rows(40, (i) => `2024-02-${String(1 + (i % 28)).padStart(2, '0')},${wave(i)}`)}`));
    expect(d.series.map((s) => s.id)).toEqual(['when.csv:v']);
    expect(d.report.notes[0]).toContain('skipped as time/index: "when" (index 0, dates, e.g. "2024-02-01")');
  });

  it('the only numeric column is used even when it ramps evenly (it is the data), and the report says so', async () => {
    const d = await load(file('ramp.csv', `count\n${rows(40, (i) => `${10 + 2 * i}`)}`));
    expect(d.series.map((s) => s.id)).toEqual(['ramp.csv:count']);
    expect(d.report.notes[0]).toMatch(
      /^columns: used "count" \(index 0\), the only numeric column, though it increases by 2 every row like an index: if it is one, the file has no value column/,
    );
  });

  it('only a time column holds numbers: refused, naming it and the fix', async () => {
    file('only-time.csv', `timestamp,city\n${rows(20, (i) => `${i * 3 + (i % 2)},Oslo`)}`);
    await expect(load('only-time.csv')).rejects.toThrow(
      /only-time\.csv: no numeric column found other than time\/index column\(s\) "timestamp" \(named like one\): set data\.source\.column/,
    );
  });

  it('explicit columns are kept as given, and the report names them with time and id columns', async () => {
    const d = await load(file('long2.csv', `time,sensor,reading\n${rows(40, (i) => `${i >> 1},${'AB'[i % 2]},${wave(i)}`)}`), {
      column: 'reading',
      idColumn: 'sensor',
      timeColumn: 'time',
    });
    expect(d.series.map((s) => s.id)).toEqual(['long2.csv:reading[A]', 'long2.csv:reading[B]']);
    expect(d.report.notes).toEqual([
      'columns: used "reading" (index 2) (data.source.column); rows ordered by "time" (index 0) (data.source.timeColumn); one series per value of "sensor" (index 1) (data.source.idColumn)',
    ]);
    // The time column may be chosen on purpose.
    expect((await loadCsv({ kind: 'csv', path: 'tv.csv', header: true, delimiter: ',', column: 'time' }, work)).map((s) => s.id)).toEqual(['tv.csv:time']);
  });

  it('names of time and index columns', () => {
    for (const n of ['time', 'Date', 'datetime', 'timestamp_utc', 'Date Time', 'ds', 'index', 'Unnamed: 0', '', 'TIME', 'year', 'ts'])
      expect(isTimeName(n), n).toBe(true);
    for (const n of ['value', 'runtime', 'time_to_failure', 'load', 'temp', 'date_of_birth', '0', 'close', 'eventTime']) expect(isTimeName(n), n).toBe(false);
  });
});

describe('through the CLI', () => {
  it('time,value without data.source.column: the [data] report says value was used and time skipped; training runs', async () => {
    const d = scratch();
    writeFileSync(join(d, 'tv.csv'), `time,value\n${rows(300, (i) => `${i},${wave(i)}`)}`);
    const cfg = tinyConfig({
      data: { source: { kind: 'csv', path: 'tv.csv' }, contextLength: 24, stride: 8 },
      schedule: { steps: 2, warmupSteps: 1, microBatch: 4 },
    });
    const r = await runCli(d, ['--config', writeConfig(d, cfg)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      '[data] data: csv tv.csv: 1 series in, 1 kept (300 points)\n  columns: used "value" (index 1), the first value column; skipped as time/index: "time" (index 0, named like one). To pick another column, set data.source.column (a name or 0-based index)\n',
    );
    expect(r.stdout + r.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs/t/checkpoints/latest'))).toBe(true);
  });
});
