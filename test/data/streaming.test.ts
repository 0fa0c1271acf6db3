/**
 * Streaming data loading (issue 14, item 6): CSV through csv-parse's stream API and JSONL line by
 * line give the same series as the in-memory parse, with the right line numbers across read
 * chunks, and keep memory near the data kept (the 200 MB figures are bench/data-load.bench.ts's);
 * a binary file is refused without quoting it; long loads show progress and stop on SIGINT.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadCsv } from '../../src/train/data/csv.ts';
import { CsvSeriesBuilder, parseCsv } from '../../src/train/data/csv-rows.ts';
import { loadJsonl } from '../../src/train/data/json.ts';
import { createLoadProgress } from '../../src/train/run/progress.ts';
import { runCli, startCli, tinyConfig, writeConfig } from '../train/cli-helpers.ts';
import { dataErrorOfAsync } from './helpers.ts';
import { spawnAsync } from '../support/spawn.ts';

const work = mkdtempSync(join(tmpdir(), 'wmoe-stream-'));
const CHILD = resolve(import.meta.dirname, '../../bench/data-load-child.ts');

/** `t,value` rows; `bad` puts a non-number at that data row (1-based), `extra` adds text before the rows. */
function csvFile(file: string, rows: number, opts: { bad?: number; extra?: string } = {}): string {
  const fd = openSync(file, 'w');
  writeSync(fd, `t,value\n${opts.extra ?? ''}`);
  for (let start = 0; start < rows; start += 50_000) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(rows, start + 50_000); i++) lines.push(i + 1 === opts.bad ? `${i},abc` : `${i},${(Math.sin(i / 30) * 5).toFixed(5)}`);
    writeSync(fd, `${lines.join('\n')}\n`);
  }
  closeSync(fd);
  return file;
}

const csv = (path: string, o: Record<string, unknown> = {}) => loadCsv({ kind: 'csv', path, header: true, delimiter: ',', ...o }, work);

describe('CSV, streamed', () => {
  let big: string;
  beforeAll(() => {
    big = csvFile(join(work, 'big.csv'), 400_000); // ~6.5 MB: several 1 MiB read chunks
  });

  it('gives exactly the series of the in-memory parse', async () => {
    const streamed = await csv('big.csv', { column: 'value', timeColumn: 't' });
    const whole = parseCsv(readFileSync(big, 'utf8'), big, { header: true, delimiter: ',', column: 'value', timeColumn: 't' });
    expect(streamed.map((s) => s.id)).toEqual(['big.csv:value']);
    expect(Buffer.compare(Buffer.from(streamed[0]!.values.buffer), Buffer.from(whole[0]!.values.buffer))).toBe(0);
    expect(streamed[0]!.values.length).toBe(400_000);
  });

  it('names the right line deep in the file, after blank lines and a quoted multi-line cell', async () => {
    // Lines: 1 header, 2 blank, 3-4 one record with a quoted line break (its value " 2\n" reads as 2), 5 blank, then the rows.
    csvFile(join(work, 'late-bad.csv'), 300_000, { bad: 299_990, extra: '\n-1,"2\n"\n\n' });
    const msg = await dataErrorOfAsync(() => csv('late-bad.csv', { column: 'value' }));
    expect(msg).toContain(`late-bad.csv:${5 + 299_990}: column "value" (index 1): "abc" is not a number`);
  });

  it('holds rows as text only while it cannot yet tell the value column', () => {
    const b = new CsvSeriesBuilder('x.csv', { header: true, delimiter: ',', timeColumn: 't' });
    b.add(['t', 'a', 'b'], 1);
    for (let i = 0; i < 1000; i++) b.add([String(i), '', String(i)], i + 2); // column a: missing so far
    expect(b.maxPending).toBe(1000);
    b.add(['1000', 'text', '1'], 1002); // a is text: b is the value column, the held rows are consumed
    b.add(['1001', 'more', '2'], 1003);
    expect(b.maxPending).toBe(1001);
    expect(b.finish()[0]!.id).toBe('x.csv:b');
    // Known at once: held only for the first 64 rows (enough to tell an evenly spaced index column).
    const direct = new CsvSeriesBuilder('y.csv', { header: true, delimiter: ',' });
    direct.add(['t', 'v'], 1);
    for (let i = 0; i < 1000; i++) direct.add([String(i), String(i * i)], i + 2);
    expect(direct.maxPending).toBe(64);
    expect(direct.finish()[0]!.id).toBe('y.csv:v'); // t is a time column (its name)
  });

  it('peak RSS stays near the data kept, measured in its own process', async () => {
    // Measured on this 6.5 MB file: the whole-file loader this replaces grew RSS by 310 MB (48x
    // the file; issue 14: 40 MB -> 2.4 GB); streaming by ~33 MB: the float64 values and times
    // (6.4 MB), csv-parse's 1 MiB read buffer and V8's young generation of short-lived strings.
    // 100 MB leaves room for GC timing and still fails any loader that keeps the text.
    const r = await spawnAsync(process.execPath, ['--import', 'tsx', CHILD, big], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim()) as { peakRssBytes: number; baselineRssBytes: number; keptBytes: number; points: number };
    expect(m.points).toBe(400_000);
    expect(m.peakRssBytes - m.baselineRssBytes).toBeLessThan(100 * 2 ** 20);
  });

  it('a binary file given as CSV is refused without quoting its bytes', async () => {
    const bin = Buffer.alloc(4096);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 131 + 7) % 256;
    writeFileSync(join(work, 'model.bin'), bin);
    const msg = await dataErrorOfAsync(() => csv('model.bin'));
    expect(msg).toMatch(/model\.bin is not a text file \(a NUL byte at byte \d+: it looks binary\): point data\.source\.path at a CSV or JSON\(L\) text file/);
    expect(msg.length).toBeLessThan(300);
    // Text that is not CSV data: a huge cell is shown clipped.
    writeFileSync(join(work, 'long-cell.csv'), `v\n${'x'.repeat(5000)}\n`);
    const long = await dataErrorOfAsync(() => csv('long-cell.csv', { column: 'v' }));
    expect(long).toContain('... (5000 characters)" is not a number');
    expect(long.length).toBeLessThan(400);
  });
});

describe('JSONL, line by line', () => {
  it('reads every line and names the line of a bad one', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ target: Array.from({ length: 100 }, (_, j) => i + j / 100) }));
    writeFileSync(join(work, 'many.jsonl'), `${lines.join('\n')}\n`);
    const s = await loadJsonl({ kind: 'jsonl', path: 'many.jsonl', field: 'target' }, work);
    expect(s).toHaveLength(3000);
    expect(s[2999]!.values[99]).toBeCloseTo(2999.99, 10);
    lines[2499] = '{"target": [1, 2, "x"]}';
    writeFileSync(join(work, 'bad-late.jsonl'), `${lines.join('\n')}\n`);
    expect(await dataErrorOfAsync(() => loadJsonl({ kind: 'jsonl', path: 'bad-late.jsonl', field: 'target' }, work))).toMatch(
      /bad-late\.jsonl:2500: at target\[2\]: got "x"/,
    );
  });
});

describe('long loads', () => {
  it('plain progress: a line per 10% of the bytes, and the time it took', () => {
    const lines: string[] = [];
    const orig = console.error;
    console.error = (l: string) => lines.push(l);
    try {
      const p = createLoadProgress('plain', '/data/x.csv', 40e6);
      for (let i = 0; i < 40; i++) p.advance(1e6);
      p.done();
    } finally {
      console.error = orig;
    }
    expect(lines[0]).toBe('[data] reading x.csv (40.0 MB)');
    expect(lines.filter((l) => /^\[data\] reading x\.csv: \d+% \(/.test(l))).toHaveLength(9);
    expect(lines[lines.length - 1]).toMatch(/^\[data\] read x\.csv in [\d.]+ s$/);
    expect(createLoadProgress('plain', 'small.csv', 1e6)).toBeTruthy(); // small files: silent (no line printed)
  });

  it('through the CLI: progress lines on a 20 MB CSV, and SIGINT during the load writes nothing', async () => {
    const d = mkdtempSync(join(tmpdir(), 'wmoe-cli-'));
    csvFile(join(d, 'big.csv'), 1_200_000);
    const cfg = tinyConfig({
      data: { source: { kind: 'csv', path: 'big.csv', column: 'value' }, contextLength: 24, stride: 512 },
      schedule: { steps: 2, warmupSteps: 1, microBatch: 4 },
    });
    const p = writeConfig(d, cfg);
    const run = startCli(d, ['--config', p]);
    await run.waitFor(/\[data\] reading big\.csv \([\d.]+ MB\)/);
    run.child.kill('SIGINT');
    const end = await run.exited;
    expect(end.code, end.stdout + end.stderr).toBe(130);
    expect(end.stdout).toContain('stopped: SIGINT before training started: nothing was written to runs/t');
    expect(existsSync(join(d, 'runs'))).toBe(false);

    const r = await runCli(d, ['--config', p]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[data\] reading big\.csv: 50% \([\d.]+ of [\d.]+ MB, \d+ s\)/);
    expect(r.stderr).toMatch(/\[data\] read big\.csv in [\d.]+ s/);
  });
});
