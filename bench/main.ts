/**
 * `npm run bench [-- suite ...] [--quick]`: runs the suites (all by default) and writes
 * bench/results/<suite>.{json,md}. The suites are imported statically, so the same entry runs from
 * the repository (bench/run.js, through tsx) and from the self-contained bundle (scripts/bundle.mjs).
 */
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { environment, markdownTable, writeResults, type Suite } from './harness.ts';
import { run as dataLoad } from './data-load.bench.ts';
import { run as dispatch } from './dispatch.bench.ts';
import { run as kernels } from './kernels.bench.ts';
import { run as matmul } from './matmul.bench.ts';
import { run as mlp } from './mlp.bench.ts';
import { run as offload } from './offload.bench.ts';
import { run as runtime } from './runtime.bench.ts';
import { run as train } from './train.bench.ts';

export const SUITES: Record<string, Suite> = { 'data-load': dataLoad, dispatch, kernels, matmul, mlp, offload, runtime, train };

export async function main(argv: readonly string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const wanted = argv.filter((a) => !a.startsWith('--'));
  const available = Object.keys(SUITES).sort();
  const unknown = wanted.filter((w) => !available.includes(w));
  if (unknown.length) {
    console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
    return 2;
  }
  const rt = await getRuntime();
  const env = environment(rt);
  let failed = 0;
  for (const name of wanted.length ? wanted : available) {
    const t0 = performance.now();
    console.error(`\n== bench ${name}${quick ? ' (quick)' : ''}`);
    try {
      const out = await SUITES[name]!({ quick, log: (m) => console.error(`  ${m}`) });
      const results = Array.isArray(out) ? out : [out];
      const files = writeResults(name, results, env);
      for (const r of results) console.log(`\n### ${name}: ${r.title}\n\n${markdownTable(r.rows, r.columns)}`);
      console.error(`  wrote ${files.md} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.error(`  suite ${name} failed:`, e);
    }
  }
  return failed ? 1 : 0;
}
