/**
 * Loading a big CSV (issue 14 item 6): wall time and peak RSS of loadData on generated files of
 * 40 MB and 200 MB (12 M rows of `t,value`, the issue's sizes), each load in a fresh process
 * (bench/data-load-child.ts). "kept" is the float64 series the loader returns (8 bytes a point).
 *
 * DATA_LOAD_BASELINE=<another checkout> adds a row per file for that checkout's loader (the
 * "before" figures in bench/results/data-load.md were taken that way, against main).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR, round, type BenchRow, type SuiteContext, type SuiteResult } from './harness.ts';

const CHILD = join(import.meta.dirname, 'data-load-child.ts');

/** `t,value` rows, ~17.6 bytes each, deterministic. */
function generate(file: string, rows: number): void {
  if (existsSync(file) && statSync(file).size > 0) return;
  const fd = openSync(file, 'w');
  writeSync(fd, 't,value\n');
  for (let start = 0; start < rows; start += 100_000) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(rows, start + 100_000); i++) lines.push(`${i},${(Math.sin(i / 50) * 10 + ((i * 7919) % 1000) / 1000).toFixed(6)}`);
    writeSync(fd, `${lines.join('\n')}\n`);
  }
  closeSync(fd);
}

interface ChildResult {
  seconds: number;
  peakRssBytes: number;
  baselineRssBytes: number;
  points: number;
  keptBytes: number;
  trainWindows: number;
}

/** GNU time, when installed, gives wall time and peak RSS of a load that crashes before it can report them. */
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

function measure(file: string, checkout?: string): ChildResult | { error: string; seconds: number | null; peakRssBytes: number | null } {
  const args = ['--import', 'tsx', CHILD, file, ...(checkout ? [checkout] : [])];
  const r = GNU_TIME
    ? spawnSync(GNU_TIME, ['-f', 'GNUTIME %e %M', process.execPath, ...args], { encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 16 << 20 })
    : spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    const t = /GNUTIME ([\d.]+) (\d+)/.exec(r.stderr ?? '');
    const why = /heap out of memory/.test(r.stderr ?? '')
      ? 'crashed: JavaScript heap out of memory'
      : `exit ${r.status ?? r.signal}: ${(r.stderr || '').split('\n').slice(-3).join(' ').slice(0, 200)}`;
    return { error: why, seconds: t ? Number(t[1]) : null, peakRssBytes: t ? Number(t[2]) * 1024 : null };
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

const MB = 1e6;
const MiB = 2 ** 20;

export async function run(ctx: SuiteContext): Promise<SuiteResult> {
  const dir = join(RESULTS_DIR, 'tmp');
  mkdirSync(dir, { recursive: true });
  const sizes = ctx.quick
    ? [{ label: '40 MB', rows: 2_400_000 }]
    : [
        { label: '40 MB', rows: 2_400_000 },
        { label: '200 MB', rows: 12_000_000 },
      ];
  const baseline = process.env.DATA_LOAD_BASELINE;
  const rows: BenchRow[] = [];
  for (const s of sizes) {
    const file = join(dir, `load-${s.rows}.csv`);
    generate(file, s.rows);
    const bytes = statSync(file).size;
    for (const [loader, checkout] of [['this checkout (streaming)', undefined], ...(baseline ? [[`baseline ${baseline}`, baseline]] : [])] as [
      string,
      string | undefined,
    ][]) {
      ctx.log(`${s.label} (${(bytes / MB).toFixed(1)} MB, ${s.rows} rows): ${loader}`);
      const m = measure(file, checkout);
      if ('error' in m) {
        const rss = m.peakRssBytes;
        rows.push({
          file: `${(bytes / MB).toFixed(1)} MB, ${s.rows.toLocaleString('en-US')} rows`,
          loader,
          seconds: m.seconds,
          'peak RSS MiB': rss === null ? null : round(rss / MiB, 0),
          'kept MiB': null,
          'growth / kept': null,
          'peak RSS / file': rss === null ? null : round(rss / bytes, 2),
          note: `${m.error}${m.seconds !== null ? ` after ${m.seconds} s (wall time and RSS from GNU time)` : ''}`,
        });
        continue;
      }
      rows.push({
        file: `${(bytes / MB).toFixed(1)} MB, ${s.rows.toLocaleString('en-US')} rows`,
        loader,
        seconds: round(m.seconds, 1),
        'peak RSS MiB': round(m.peakRssBytes / MiB, 0),
        'kept MiB': round(m.keptBytes / MiB, 1),
        'growth / kept': round((m.peakRssBytes - m.baselineRssBytes) / m.keptBytes, 1),
        'peak RSS / file': round(m.peakRssBytes / bytes, 2),
        note: `node baseline before loading ${round(m.baselineRssBytes / MiB, 0)} MiB; ${m.trainWindows} train windows`,
      });
    }
  }
  return {
    title: 'loadData of a big CSV: wall time and peak RSS (one fresh process per load)',
    rows,
    notes: [
      'Files: generated `t,value` rows (bench/results/tmp/, not committed); config: column value, timeColumn t, contextLength 64 (cleaning, split and windows included).',
      'kept = the float64 series loadData returns (8 bytes a point). Peak RSS includes Node itself (its RSS before loading is in the note); growth / kept = (peak RSS - that) / kept.',
      'Goal (issue 14): a 200 MB CSV in under a minute on this 2-core machine, peak RSS a small multiple of the data kept.',
      ...(baseline
        ? [
            `Baseline rows: the loader of ${baseline} at commit ${spawnSync('git', ['-C', baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || '(unknown)'} (reads the whole file, then parses it).`,
          ]
        : []),
    ],
  };
}
