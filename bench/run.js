#!/usr/bin/env node
// `npm run bench [-- suite ...] [--quick]`: runs bench/<suite>.bench.ts (all suites by default)
// and writes bench/results/<suite>.{json,md}. Registers tsx so the TypeScript runs directly.
import { register } from 'tsx/esm/api';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wanted = args.filter((a) => !a.startsWith('--'));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
const suites = wanted.length ? wanted : available;

const harness = await import(pathToFileURL(join(here, 'harness.ts')).href);
const { getRuntime } = await import(pathToFileURL(join(here, '..', 'src', 'kernels', 'runtime.ts')).href);
const rt = await getRuntime();
const env = harness.environment(rt);
let failed = 0;
for (const name of suites) {
  const t0 = performance.now();
  console.error(`\n== bench ${name}${quick ? ' (quick)' : ''}`);
  try {
    const mod = await import(pathToFileURL(join(here, `${name}.bench.ts`)).href);
    if (typeof mod.run !== 'function') throw new Error(`bench/${name}.bench.ts must export run(ctx)`);
    const out = await mod.run({ quick, log: (m) => console.error(`  ${m}`) });
    const results = Array.isArray(out) ? out : [out];
    const files = harness.writeResults(name, results, env);
    for (const r of results) console.log(`\n### ${name}: ${r.title}\n\n${harness.markdownTable(r.rows, r.columns)}`);
    console.error(`  wrote ${files.md} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.error(`  suite ${name} failed:`, e);
  }
}
process.exit(failed ? 1 : 0);
