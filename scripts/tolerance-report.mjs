#!/usr/bin/env node
// Summarise a TEST_MEASURE file (test/reference/compare.ts appends one JSON line per expectClose):
// per test file and comparison, the worst error seen, its bound and the margin bound / worst.
//
//   rm -f /tmp/m.jsonl; TEST_MEASURE=/tmp/m.jsonl npx vitest run test/kernels   # run as often as wanted
//   node scripts/tolerance-report.mjs /tmp/m.jsonl [--min-margin 3] [--max-margin 1000]
//
// Rows whose margin is below --min-margin (a bound that fresh seeds may cross) or above
// --max-margin (a bound that hides real errors) are marked. Numbers inside the comparison's name
// (sizes, seeds, steps) are folded into '#', so one comparison over many shapes is one row.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: node scripts/tolerance-report.mjs <TEST_MEASURE file> [--min-margin N] [--max-margin N]');
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const minMargin = opt('--min-margin', 3);
const maxMargin = opt('--max-margin', 1000);

const rows = new Map();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const m = JSON.parse(line);
  const key = `${m.file ?? '?'} | ${String(m.what)
    .replace(/\d+(\.\d+)?(e[+-]?\d+)?/g, '#')
    .slice(0, 90)}`;
  const r = rows.get(key) ?? { worst: 0, rtol: new Set(), n: 0 };
  r.worst = Math.max(r.worst, m.err);
  r.rtol.add(m.rtol);
  r.n++;
  rows.set(key, r);
}
const out = [...rows].map(([key, r]) => {
  const bound = Math.max(...r.rtol);
  const margin = r.worst > 0 ? bound / r.worst : Infinity;
  const flag = margin < minMargin ? 'TIGHT' : margin > maxMargin ? 'LOOSE' : '';
  return { key, worst: r.worst, bound, margin, n: r.n, flag };
});
out.sort((a, b) => a.margin - b.margin);
console.log('margin    worst      bound      n     flag   comparison');
for (const r of out) {
  const m = r.margin === Infinity ? 'exact' : r.margin.toFixed(1);
  console.log(
    `${m.padStart(8)}  ${r.worst.toExponential(2).padEnd(9)}  ${String(r.bound).padEnd(9)}  ${String(r.n).padStart(4)}  ${r.flag.padEnd(5)}  ${r.key}`,
  );
}
