/** The memory plan as a readable table: categories at the peak, layers, limits, verdict, suggestions. */
import { CATEGORY_LABELS, type Category, type MemoryPlan } from './planner.ts';
import { describe } from './plan-suggestions.ts';

const KIB = 1024;
const MIB = KIB * KIB;
const GIB = MIB * KIB;

/** GiB from 1 GiB up, MiB from 1 MiB up, else KiB. */
export function formatBytes(b: number): string {
  const a = Math.abs(b);
  if (a >= GIB) return `${(b / GIB).toFixed(2)} GiB`;
  if (a >= MIB) return `${(b / MIB).toFixed(1)} MiB`;
  return `${(b / KIB).toFixed(1)} KiB`;
}

const pct = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
}

const indent = (lines: string[]) => lines.map((l) => `  ${l}`);

export function formatPlan(plan: MemoryPlan): string {
  const r = plan.run;
  const out: string[] = [];
  out.push(
    `Memory plan for ${plan.target.name} (${plan.target.description}; ${plan.target.family} kernels): ${plan.model.name}, ` +
      `${plan.model.parameters.toLocaleString('en-US')} parameters (${plan.model.activeParameters.toLocaleString('en-US')} active)`,
  );
  out.push(
    `Step: micro-batch ${r.microBatch} x context ${r.contextLength} = ${plan.tokensPerMicroBatch.toLocaleString('en-US')} tokens, accumulation ${r.accumulation}, ` +
      `${r.activations} activations, recompute ${r.recompute ? 'on' : 'off'}, metrics every ${r.metricsEvery} step${r.metricsEvery > 1 ? 's' : ''}; ` +
      `${plan.dispatchesPerStep} dispatches and ${plan.submitsPerStep} submit${plan.submitsPerStep === 1 ? '' : 's'} per optimizer step`,
  );
  out.push('');

  const peak = plan.peakBytes;
  const cats = (Object.keys(CATEGORY_LABELS) as Category[]).filter((c) => plan.categories[c] > 0);
  out.push(`At the peak (${plan.peakPhase}):`);
  out.push(
    ...indent(
      table([['category', 'bytes', 'share'], ...cats.map((c) => [CATEGORY_LABELS[c], formatBytes(plan.categories[c]), pct(plan.categories[c], peak)]), ['total peak', formatBytes(peak), '100%']], new Set([1, 2])),
    ),
  );
  out.push(`  resident between steps: ${formatBytes(plan.residentBytes)}; live when the first backward starts: ${formatBytes(plan.forwardEndBytes)}`);
  out.push('');

  const layers = plan.perLayer.filter((l) => l.forward + l.backward > 0);
  if (layers.length) {
    out.push('Decoder layers at the peak (bytes made in the layer):');
    out.push(...indent(table([['layer', 'forward', 'backward'], ...layers.map((l) => [String(l.layer), formatBytes(l.forward), formatBytes(l.backward)])], new Set([1, 2]))));
    out.push('');
  }
  out.push('Largest buffers live at the peak:');
  for (const b of plan.largestAtPeak) out.push(`  ${b.label} (${b.region}): ${formatBytes(b.bytes)}`);
  out.push(`Largest buffer of the run: ${plan.largestBuffer.label} (${plan.largestBuffer.region}), ${formatBytes(plan.largestBuffer.bytes)}; the per-binding limit is ${formatBytes(plan.target.maxBindingBytes)}`);
  out.push('');

  const b = plan.budget;
  out.push(`Budget: ${formatBytes(b.totalBytes)} - ${formatBytes(b.reserveBytes)} reserve = ${formatBytes(b.usableBytes)} usable`);
  if (plan.fits) out.push(`Verdict: FITS - peak ${formatBytes(peak)} (${pct(peak, b.usableBytes)} of usable), headroom ${formatBytes(plan.headroomBytes)}`);
  else {
    const why = [
      ...(peak > b.usableBytes ? [`peak ${formatBytes(peak)} exceeds ${formatBytes(b.usableBytes)} by ${formatBytes(-plan.headroomBytes)}`] : []),
      ...plan.violations.map(describe),
    ];
    out.push(`Verdict: DOES NOT FIT - ${why.join('; ')}`);
  }
  if (plan.suggestions.length) {
    out.push('Suggestions (each planned on its own):');
    for (const s of plan.suggestions) out.push(`  - ${s.text}`);
  }
  out.push('');
  out.push('Notes:');
  for (const n of plan.notes) out.push(`  - ${n}`);
  return out.join('\n');
}
