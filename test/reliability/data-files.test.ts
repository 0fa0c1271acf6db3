/**
 * Issue 23, data files: every reader checks what it reads. A file that changes while it is read
 * (a writer still appending, a truncation, a replacement) is refused, never used in part; a file
 * whose last row is cut off says so; UTF-16 (Excel's "Unicode text") is decoded, with either byte
 * order; link loops, dangling links and paths through a file are named as such.
 */
import { describe, expect, it } from 'vitest';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  renameSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCsv } from '../../src/train/data/csv.ts';
import { loadJsonl } from '../../src/train/data/json.ts';
import type { LoadProgress } from '../../src/train/data/files.ts';
import { dataErrorOfAsync } from '../data/helpers.ts';
import { runCli, scratch, startCli, tinyConfig, writeConfig } from '../train/cli-helpers.ts';

const STACK = /^\s{4}at /m;
const work = mkdtempSync(join(tmpdir(), 'wmoe-files-'));
const wave = (i: number) => Math.sin(i / 5).toFixed(4);
const TV = `time,value\n${Array.from({ length: 300 }, (_, i) => `${i},${wave(i)}\n`).join('')}`;
const csv = (path: string, progress?: LoadProgress, dir = work) =>
  loadCsv({ kind: 'csv', path, header: true, delimiter: ',', column: 'value' }, dir, progress ? { progress } : {});

/** A file of about `mb` MB of `time,value` rows. */
function bigCsv(file: string, mb: number): number {
  const fd = openSync(file, 'w');
  writeSync(fd, 'time,value\n');
  const block = Array.from({ length: 50_000 }, (_, i) => `${i},${wave(i)}`).join('\n') + '\n';
  for (let n = 0; n * block.length < mb * 1e6; n++) writeSync(fd, block);
  closeSync(fd);
  return statSync(file).size;
}

/** A progress hook that runs `f` once, after the first chunk was read: a change at a known point of the read. */
function once(f: () => void): LoadProgress {
  let done = false;
  return {
    advance() {
      if (!done) ((done = true), f());
    },
    done() {},
  };
}

/** Train a tiny run on `data` (a source) in a scratch folder; returns the CLI result and the folder. */
async function trainOn(d: string, source: Record<string, unknown>, steps = 2) {
  const cfg = tinyConfig({ data: { source, contextLength: 24, stride: 8 }, schedule: { steps, warmupSteps: 1, microBatch: 4 } });
  return await runCli(d, ['--config', writeConfig(d, cfg)]);
}

function badInput(d: string, r: { status: number | null; stdout: string; stderr: string }, re: RegExp): void {
  expect(r.status, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).toMatch(re);
  expect(r.stdout + r.stderr).not.toMatch(STACK);
  expect(existsSync(join(d, 'runs')), 'a refused run writes nothing').toBe(false);
}

describe('a data file that changes while it is read', () => {
  it('truncated to 28% mid-read (CLI, a 24 MB CSV): exit 2, "changed while being read (was N bytes, now M)", nothing written', async () => {
    const d = scratch();
    const size = bigCsv(join(d, 'big.csv'), 24);
    const cfg = tinyConfig({
      data: { source: { kind: 'csv', path: 'big.csv', column: 'value' }, contextLength: 24, stride: 512 },
      schedule: { steps: 2, warmupSteps: 1, microBatch: 4 },
    });
    const run = startCli(d, ['--config', writeConfig(d, cfg)]);
    // The first progress line comes from the read itself (the file was checked and opened by then).
    await run.waitFor(/\[data\] reading big\.csv: 10% /);
    const cut = Math.floor(size * 0.28);
    truncateSync(join(d, 'big.csv'), cut);
    const end = await run.exited;
    expect(end.code, end.stdout + end.stderr).toBe(2);
    expect(end.stderr).toMatch(
      new RegExp(
        `error: \\S+/big\\.csv changed while being read \\(was ${size} bytes, now ${cut}(; \\d+ bytes were read)?\\): its data would be used in part: wait until the program writing it has finished, or copy it once complete \\(cp\\) and point data\\.source\\.path at the copy`,
      ),
    );
    expect(end.stdout + end.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs'))).toBe(false);
  });

  it('truncated, appended to, or replaced after the first chunk (deterministic): each refused with the sizes', async () => {
    const file = join(work, 'grow.csv');
    const size = bigCsv(file, 3);
    const cut = Math.floor(size * 0.28);
    expect(
      await dataErrorOfAsync(() =>
        csv(
          'grow.csv',
          once(() => truncateSync(file, cut)),
        ),
      ),
    ).toMatch(new RegExp(`grow\\.csv changed while being read \\(was ${size} bytes, now ${cut}; \\d+ bytes were read\\)`));

    bigCsv(file, 3);
    expect(
      await dataErrorOfAsync(() =>
        csv(
          'grow.csv',
          once(() => appendFileSync(file, '1,2\n3,4\n')),
        ),
      ),
    ).toMatch(new RegExp(`grow\\.csv changed while being read \\(was ${size} bytes, now ${size + 8}`));

    bigCsv(file, 3);
    const replace = () => {
      writeFileSync(`${file}.new`, TV);
      renameSync(`${file}.new`, file);
    };
    expect(await dataErrorOfAsync(() => csv('grow.csv', once(replace)))).toMatch(
      /grow\.csv was replaced by another file while being read \(was \d+ bytes, now \d+/,
    );

    bigCsv(file, 3);
    expect(
      (
        await csv(
          'grow.csv',
          once(() => {}),
        )
      )[0]!.values.length,
    ).toBeGreaterThan(100_000); // unchanged: loads
  });

  it('a JSONL file truncated mid-read: refused the same way (not a "bad line")', async () => {
    const file = join(work, 'grow.jsonl');
    const line = `${JSON.stringify({ target: Array.from({ length: 500 }, (_, i) => +wave(i)) })}\n`;
    writeFileSync(file, line.repeat(1000));
    const size = statSync(file).size;
    const msg = await dataErrorOfAsync(() =>
      loadJsonl({ kind: 'jsonl', path: 'grow.jsonl', field: 'target' }, work, { progress: once(() => truncateSync(file, 1_500_000)) }),
    );
    expect(msg).toMatch(new RegExp(`grow\\.jsonl changed while being read \\(was ${size} bytes, now 1500000`));
  });
});

describe('a file whose last line is cut off', () => {
  it('CSV ending mid-row (CLI): names the line, says the file ends mid-row; a short row before the end stays a plain error', async () => {
    const d = scratch();
    writeFileSync(join(d, 'cut.csv'), `${TV}300`);
    badInput(
      d,
      await trainOn(d, { kind: 'csv', path: 'cut.csv', column: 'value' }),
      /error: \S+\/cut\.csv:302: the last row has 1 field\(s\), expected 2 like the header: the file ends mid-row \(was it cut off while being written or copied\?\): use the complete file, or remove that line/,
    );
    writeFileSync(join(d, 'short.csv'), `${TV}300\n301,0.5\n`);
    badInput(
      d,
      await trainOn(d, { kind: 'csv', path: 'short.csv', column: 'value' }),
      /error: \S+\/short\.csv:302: row has 1 field\(s\), expected 2 like the header: fix the row/,
    );
  });

  it('JSONL whose last line is cut (CLI): names the line and says it is cut off', async () => {
    const d = scratch();
    const line = (k: number) => JSON.stringify({ target: Array.from({ length: 100 }, (_, i) => +wave(i + k)) });
    writeFileSync(join(d, 'cut.jsonl'), `${line(0)}\n${line(1)}\n${line(2).slice(0, 150)}`);
    badInput(
      d,
      await trainOn(d, { kind: 'jsonl', path: 'cut.jsonl' }),
      /error: \S+\/cut\.jsonl:3: the last line is cut off \(the file does not end with a line break; was it still being written or copied\?\): not valid JSON \(.*\): each line must hold one JSON array of numbers.*\. Use the complete file, or remove that line/,
    );
    writeFileSync(join(d, 'mid.jsonl'), `${line(0)}\n${line(1).slice(0, 150)}\n${line(2)}\n`);
    badInput(d, await trainOn(d, { kind: 'jsonl', path: 'mid.jsonl' }), /error: \S+\/mid\.jsonl:2: not valid JSON/);
  });
});

describe('encodings', () => {
  const utf16 = (text: string, order: 'le' | 'be') => {
    const le = Buffer.from(`\uFEFF${text}`, 'utf16le');
    return order === 'le' ? le : Buffer.from(le).swap16();
  };
  const MIXED = `Zeit,température\n${Array.from({ length: 300 }, (_, i) => `${i},${wave(i)}\n`).join('')}`;

  it('UTF-16 LE and BE with a byte-order mark, and UTF-8 with one, load exactly as UTF-8', async () => {
    writeFileSync(join(work, 'u8.csv'), MIXED);
    writeFileSync(join(work, 'u8bom.csv'), `\uFEFF${MIXED}`);
    writeFileSync(join(work, 'le.csv'), utf16(MIXED, 'le'));
    writeFileSync(join(work, 'be.csv'), utf16(MIXED, 'be'));
    const load = (p: string) => loadCsv({ kind: 'csv', path: p, header: true, delimiter: ',', column: 'température' }, work);
    const ref = Array.from((await load('u8.csv'))[0]!.values);
    expect(ref).toHaveLength(300);
    for (const p of ['u8bom.csv', 'le.csv', 'be.csv']) {
      const s = await load(p);
      expect(s[0]!.id, p).toBe(`${p}:température`);
      expect(Array.from(s[0]!.values), p).toEqual(ref);
    }
  });

  it('UTF-16 JSONL (both orders) and a UTF-8 BOM on JSONL load', async () => {
    const text = `[1, 2, 3]\n{"target": [4, 5]}\n`;
    writeFileSync(join(work, 'le.jsonl'), utf16(text, 'le'));
    writeFileSync(join(work, 'be.jsonl'), utf16(text, 'be'));
    writeFileSync(join(work, 'bom.jsonl'), `\uFEFF${text}`);
    for (const p of ['le.jsonl', 'be.jsonl', 'bom.jsonl']) {
      const s = await loadJsonl({ kind: 'jsonl', path: p, field: 'target' }, work);
      expect(
        s.map((x) => Array.from(x.values)),
        p,
      ).toEqual([
        [1, 2, 3],
        [4, 5],
      ]);
    }
  });

  it.each(['le', 'be'] as const)('a UTF-16 %s CSV trains through the CLI (before: refused as binary)', async (order) => {
    const d = scratch();
    writeFileSync(join(d, 'excel.csv'), utf16(MIXED, order));
    const r = await trainOn(d, { kind: 'csv', path: 'excel.csv' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      '[data] data: csv excel.csv: 1 series in, 1 kept (300 points)\n  columns: used "température" (index 1), the first value column; skipped as time/index: "Zeit" (index 0, it increases by 1 every row',
    );
    expect(r.stdout + r.stderr).not.toMatch(STACK);
  });

  it('UTF-16 without a byte-order mark, UTF-32, and binary: each named, with the fix', async () => {
    const d = scratch();
    writeFileSync(join(d, 'nobom.csv'), Buffer.from(MIXED, 'utf16le'));
    badInput(
      d,
      await trainOn(d, { kind: 'csv', path: 'nobom.csv' }),
      /error: \S+\/nobom\.csv looks UTF-16 LE encoded without a byte-order mark \(a NUL in every other byte\): convert it to UTF-8 \(iconv -f UTF-16LE -t UTF-8 \S+\/nobom\.csv > converted\.csv\)/,
    );
    writeFileSync(join(d, 'u32.csv'), Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from('a\0\0\0', 'latin1')]));
    badInput(d, await trainOn(d, { kind: 'csv', path: 'u32.csv' }), /error: \S+\/u32\.csv is UTF-32 encoded: convert it to UTF-8 \(iconv -f UTF-32 -t UTF-8/);
    writeFileSync(join(d, 'w.bin'), Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 0, 8, 0x13, 0x7f, 0, 0, 0x88]));
    badInput(d, await trainOn(d, { kind: 'csv', path: 'w.bin' }), /error: \S+\/w\.bin is not a text file \(a NUL byte at byte 4: it looks binary\)/);
  });
});

describe('paths that cannot be read', () => {
  it('a symbolic link loop (ELOOP) is not "not found"', async () => {
    const d = scratch();
    symlinkSync(join(d, 'b.csv'), join(d, 'a.csv'));
    symlinkSync(join(d, 'a.csv'), join(d, 'b.csv'));
    badInput(
      d,
      await trainOn(d, { kind: 'csv', path: 'a.csv' }),
      /error: data file \S+\/a\.csv: too many levels of symbolic links \(ELOOP: the links point at each other in a loop\): fix the links \(ls -l shows where each points\) or point data\.source\.path at the file itself/,
    );
  });

  it('a dangling link names its target; a path through a file says so (ENOTDIR)', async () => {
    const d = scratch();
    symlinkSync(join(d, 'gone.csv'), join(d, 'link.csv'));
    badInput(
      d,
      await trainOn(d, { kind: 'csv', path: 'link.csv' }),
      /error: data file \S+\/link\.csv is a symbolic link to \S+\/gone\.csv, which does not exist \(ENOENT\): fix the link/,
    );
    writeFileSync(join(d, 'data'), TV);
    badInput(
      d,
      await trainOn(d, { kind: 'jsonl', path: 'data/x.jsonl' }),
      /error: data file \S+\/data\/x\.jsonl: a part of the path is a file, not a folder \(ENOTDIR\): check data\.source\.path/,
    );
  });
});
