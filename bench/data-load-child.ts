/**
 * One data load, measured in its own process (peak RSS is per process): loadData of a CSV with
 * contextLength 64, as training would. Prints one JSON line.
 *
 *   node --import tsx bench/data-load-child.ts <file.csv> [<checkout whose src/train/data/index.ts to use>]
 *
 * The optional checkout measures another version's loader on the same file (the "before" row);
 * its loadData may be sync (older versions) or async.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LoadedData } from '../src/train/data/index.ts';
import { parseDataConfig } from '../src/train/data/config.ts';

const [file, checkout] = process.argv.slice(2);
if (!file) throw new Error('usage: data-load-child.ts <file.csv> [checkout]');
const root = checkout ? resolve(checkout) : resolve(import.meta.dirname, '..');
const mod = (await import(pathToFileURL(resolve(root, 'src/train/data/index.ts')).href)) as {
  loadData: (cfg: unknown, opts: { cwd: string }) => LoadedData | Promise<LoadedData>;
};
const cfg = parseDataConfig({ source: { kind: 'csv', path: resolve(file), column: 'value', timeColumn: 't' }, contextLength: 64 });
const baseline = process.memoryUsage().rss;
const t0 = performance.now();
const data = await mod.loadData(cfg, { cwd: process.cwd() });
const seconds = (performance.now() - t0) / 1000;
const points = data.report.points;
console.log(
  JSON.stringify({
    seconds,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    baselineRssBytes: baseline,
    points,
    keptBytes: points * 8,
    trainWindows: data.train.length,
  }),
);
