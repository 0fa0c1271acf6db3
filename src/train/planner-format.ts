/** The memory plan as a readable table: categories at the peak, one layer itemised, verdict, suggestions. */
import { CATEGORY_LABELS, GIB, MIB, type ActivationBlock, type Category, type MemoryPlan, type TensorItem } from './planner.ts';

/** GiB from 1 GiB up, MiB from 1 MiB up, else KiB. */
export function formatBytes(b: number): string {
  const a = Math.abs(b);
  if (a >= GIB) return `${(b / GIB).toFixed(2)} GiB`;
  if (a >= MIB) return `${(b / MIB).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
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

function items(rows: TensorItem[]): string[][] {
  return [...rows].sort((a, b) => b.bytes - a.bytes).map((i) => [`  ${i.group}`, i.name, i.saved ? 'saved' : 'held', formatBytes(i.bytes)]);
}

function blockLine(name: string, b: ActivationBlock): string[] {
  return [name, formatBytes(b.savedBytes), formatBytes(b.heldBytes), formatBytes(b.bytes)];
}

export function formatPlan(plan: MemoryPlan): string {
  const r = plan.run;
  const out: string[] = [];
  out.push(
    `Memory plan: ${plan.model.preset} (${plan.model.parameters.toLocaleString('en-US')} parameters, ${plan.model.activeParameters.toLocaleString('en-US')} active), ` +
      `micro-batch ${r.microBatch} x context ${r.contextLength} = ${plan.tokens.toLocaleString('en-US')} tokens, ${r.dtype} activations, ${r.optimizer}, recompute ${r.recompute ? 'on (planned; not in the engine yet)' : 'off'}`,
  );
  out.push('');

  // Where the bytes are at the peak.
  const peak = plan.peak.bytes;
  const cats = (Object.keys(CATEGORY_LABELS) as Category[]).filter((c) => plan.peak.breakdown[c] > 0);
  out.push(`At the peak (${plan.peak.phase}):`);
  out.push(
    ...table(
      [['category', 'bytes', 'share'], ...cats.map((c) => [CATEGORY_LABELS[c], formatBytes(plan.peak.breakdown[c]), pct(plan.peak.breakdown[c], peak)]), ['total peak', formatBytes(peak), '100%']],
      new Set([1, 2]),
    ).map((l) => `  ${l}`),
  );
  out.push('');

  out.push('Resident state:');
  out.push(
    ...table(
      [
        ['', 'exact', 'pool (sizeClass)'],
        [`parameters (${plan.parameters.tensors} tensors, f32)`, formatBytes(plan.parameters.bytes), formatBytes(plan.parameters.allocatedBytes)],
        ['gradients (f32)', formatBytes(plan.gradients.bytes), formatBytes(plan.gradients.allocatedBytes)],
        ['AdamW m + v (f32)', formatBytes(plan.optimizer.bytes), formatBytes(plan.optimizer.allocatedBytes)],
        ['inputs (batch, targets, RoPE table)', '', formatBytes(plan.inputs.bytes)],
      ],
      new Set([1, 2]),
    ).map((l) => `  ${l}`),
  );
  out.push('');

  const a = plan.activations;
  out.push('Activations at the end of the forward (saved = kept for backward; held = freed when backward starts):');
  out.push(
    ...table(
      [
        ['', 'saved', 'held', 'total'],
        blockLine('embedding', a.embedding),
        blockLine('one decoder layer', a.perLayer),
        [`x ${a.layers} layers`, '', '', formatBytes(a.layersBytes)],
        blockLine('final norm + heads', a.head),
        blockLine('losses', a.loss),
        ['all activations', formatBytes(a.savedBytes), formatBytes(a.forwardEndBytes - a.savedBytes), formatBytes(a.forwardEndBytes)],
      ],
      new Set([1, 2, 3]),
    ).map((l) => `  ${l}`),
  );
  out.push('');
  out.push('One decoder layer, by tensor:');
  out.push(...table([['  group', 'tensor', '', 'bytes'], ...items(a.perLayer.items)], new Set([3])).map((l) => `  ${l}`));
  out.push('');

  out.push(`Backward: peak ${formatBytes(plan.backward.peakBytes)}, of which transient ${formatBytes(plan.backward.transientBytes)} (gradients in flight and temporaries). Largest then:`);
  for (const t of plan.backward.largest) out.push(`    ${t.name}${t.layer >= 0 ? ` (layer ${t.layer})` : ''}: ${formatBytes(t.bytes)}`);
  out.push('');

  const b = plan.budget;
  out.push(`Budget: ${formatBytes(b.totalBytes)} - ${formatBytes(b.reserveBytes)} reserve = ${formatBytes(b.usableBytes)} usable`);
  out.push(
    plan.fits
      ? `Verdict: FITS - peak ${formatBytes(peak)} (${pct(peak, b.usableBytes)} of usable), headroom ${formatBytes(plan.headroomBytes)}; micro-batch up to ${plan.maxMicroBatch} fits`
      : `Verdict: DOES NOT FIT - peak ${formatBytes(peak)} exceeds ${formatBytes(b.usableBytes)} by ${formatBytes(-plan.headroomBytes)}`,
  );
  if (plan.suggestions.length) {
    out.push('Suggestions (each alone, other settings unchanged):');
    for (const s of plan.suggestions) out.push(`  - ${s.text}`);
  }
  out.push('');
  out.push('Notes:');
  for (const n of plan.notes) out.push(`  - ${n}`);
  return out.join('\n');
}
