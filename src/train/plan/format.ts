/** The memory plan as a readable table: categories at the peak, layers, limits, verdict, suggestions. */
import { formatPolicy } from '../../kernels/policy.ts';
import { CATEGORY_LABELS, type Category, type MemoryPlan } from './planner.ts';
import { describe } from './suggestions.ts';
import type { StepTime } from './step-time.ts';

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

export function formatPlan(plan: MemoryPlan, stepTime: StepTime | null = null): string {
  const r = plan.run;
  const out: string[] = [];
  out.push(
    `Memory plan for ${plan.target.name} (${plan.target.description}; ${plan.target.family} kernels): ${plan.model.name}, ` +
      `${plan.model.parameters.toLocaleString('en-US')} parameters (${plan.model.activeParameters.toLocaleString('en-US')} active)`,
  );
  out.push(
    `Step: micro-batch ${r.microBatch} x context ${r.contextLength} = ${plan.tokensPerMicroBatch.toLocaleString('en-US')} tokens, accumulation ${r.accumulation}, ` +
      `${r.activations} activations, recompute ${r.recompute ? 'on' : 'off'}, metrics every ${r.metricsEvery} step${r.metricsEvery > 1 ? 's' : ''}; ` +
      `${plan.dispatchesPerStep} dispatches and ${plan.submitsPerStep} submit${plan.submitsPerStep === 1 ? '' : 's'} per optimizer step` +
      `${r.offload === 'host' ? '; optimizer offloaded to the host' : ''}`,
  );
  out.push('');

  const peak = plan.peakBytes;
  const cats = (Object.keys(CATEGORY_LABELS) as Category[]).filter((c) => plan.categories[c] > 0);
  out.push(`At the peak (${plan.peakPhase}):`);
  out.push(
    ...indent(
      table(
        [
          ['category', 'bytes', 'share'],
          ...cats.map((c) => [CATEGORY_LABELS[c], formatBytes(plan.categories[c]), pct(plan.categories[c], peak)]),
          ['total peak', formatBytes(peak), '100%'],
        ],
        new Set([1, 2]),
      ),
    ),
  );
  out.push(`  resident between steps: ${formatBytes(plan.residentBytes)}; live when the first backward starts: ${formatBytes(plan.forwardEndBytes)}`);
  out.push('');

  const layers = plan.perLayer.filter((l) => l.forward + l.backward > 0);
  if (layers.length) {
    out.push('Decoder layers at the peak (bytes made in the layer):');
    // Runs of layers holding the same bytes share a row ("0-34").
    const rows: string[][] = [];
    let first = layers[0]!;
    layers.forEach((l, i) => {
      const next = layers[i + 1];
      if (next && next.layer === l.layer + 1 && next.forward === l.forward && next.backward === l.backward) return;
      rows.push([first.layer === l.layer ? String(l.layer) : `${first.layer}-${l.layer}`, formatBytes(l.forward), formatBytes(l.backward)]);
      if (next) first = next;
    });
    out.push(...indent(table([['layer', 'forward', 'backward'], ...rows], new Set([1, 2]))));
    out.push('');
  }
  out.push('Largest buffers live at the peak:');
  for (const b of plan.largestAtPeak) out.push(`  ${b.label} (${b.region}): ${formatBytes(b.bytes)}`);
  out.push(
    `Largest buffer of the run: ${plan.largestBuffer.label} (${plan.largestBuffer.region}), ${formatBytes(plan.largestBuffer.bytes)}; the per-binding limit is ${formatBytes(plan.target.maxBindingBytes)}`,
  );
  out.push('');

  const h = plan.host;
  if (h) {
    out.push('Host memory (optim.offload "host"):');
    out.push(
      ...indent(
        table(
          [
            ['', 'bytes'],
            ['f32 master weights', formatBytes(h.masterBytes)],
            ['AdamW exp_avg + exp_avg_sq (f32)', formatBytes(h.momentsBytes)],
            ['gradient staging (one streamed group)', formatBytes(h.stagingBytes)],
            ['total host', formatBytes(h.totalBytes)],
            [h.availableFrom === '--host-gb' ? 'host RAM (--host-gb)' : 'host RAM of this machine', formatBytes(h.availableBytes)],
          ],
          new Set([1]),
        ),
      ),
    );
    out.push(`  per optimizer step: ${formatBytes(h.downBytes)} of gradients down, ${formatBytes(h.upBytes)} of working weights up`);
    out.push('');
  }
  if (stepTime) out.push(...formatStepTime(stepTime), '');

  const b = plan.budget;
  out.push(`Budget: ${formatBytes(b.totalBytes)} - ${formatBytes(b.reserveBytes)} reserve = ${formatBytes(b.usableBytes)} usable`);
  // The device verdict, then the host's (docs/PLANNER.md "Verdicts").
  if (plan.deviceFits)
    out.push(`Verdict: FITS - peak ${formatBytes(peak)} (${pct(peak, b.usableBytes)} of usable), headroom ${formatBytes(plan.headroomBytes)}`);
  else {
    const why = [
      ...(peak > b.usableBytes ? [`peak ${formatBytes(peak)} exceeds ${formatBytes(b.usableBytes)} by ${formatBytes(-plan.headroomBytes)}`] : []),
      ...plan.violations.map(describe),
    ];
    out.push(`Verdict: DOES NOT FIT - ${why.join('; ')}`);
  }
  if (h) out.push(hostVerdict(h));
  if (plan.suggestions.length) {
    out.push('Suggestions (each planned on its own):');
    for (const s of plan.suggestions) out.push(`  - ${s.text}`);
  }
  out.push('');
  out.push(...formatPolicy(plan.policy).split('\n'), '');
  out.push('Notes:');
  for (const n of plan.notes) out.push(`  - ${n}`);
  return out.join('\n');
}

/** The host verdict: against --host-gb it decides like the device's; against this machine's RAM it warns (the plan may be for another machine). */
export function hostVerdict(h: NonNullable<MemoryPlan['host']>): string {
  const need = `${formatBytes(h.totalBytes)} of ${formatBytes(h.availableBytes)}`;
  if (h.fits) return `Host verdict: FITS - the offloaded optimizer takes ${need} (${h.availableFrom === '--host-gb' ? '--host-gb' : "this machine's RAM"})`;
  if (h.availableFrom === '--host-gb')
    return `Host verdict: DOES NOT FIT - the offloaded optimizer needs ${formatBytes(h.totalBytes)}, --host-gb gives ${formatBytes(h.availableBytes)}`;
  return (
    `Host verdict: WARNING - the offloaded optimizer needs ${formatBytes(h.totalBytes)} of host RAM and this machine has ${formatBytes(h.availableBytes)}: ` +
    `a training run here would be refused. If the training machine is another one, plan with --host-gb <its RAM in GiB> (the exit code follows the device verdict until --host-gb is given)`
  );
}

/** Seconds as s, min, h or days, whichever reads best. */
export function formatDuration(s: number): string {
  if (s < 120) return secs(s);
  if (s < 2 * 3600) return `${(s / 60).toFixed(0)} min`;
  if (s < 2 * 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

const secs = (s: number): string => (s >= 100 ? `${s.toFixed(0)} s` : s >= 1 ? `${s.toFixed(1)} s` : `${(s * 1000).toFixed(0)} ms`);

/** 655,360,000 as "655.4 M", 1.2e9 as "1.20 B". */
function formatTokens(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  return n.toLocaleString('en-US');
}

/** "RTX 3090: ~N s per optimizer step = compute A s at X% of peak + transfer B s + host AdamW C s", each part labelled. */
export function formatStepTime(t: StepTime): string[] {
  const parts = [
    `compute ${secs(t.compute.seconds)}`,
    ...(t.transfer ? [`transfer ${secs(t.transfer.seconds)}`] : []),
    ...(t.host ? [`host AdamW ${secs(t.host.seconds)}`] : []),
  ];
  const out = [
    `Step time on ${t.target} (${t.compute.units}): ~${secs(t.seconds)} per optimizer step (${t.tokensPerStep.toLocaleString('en-US')} tokens, ${(t.flops / 1e12).toFixed(1)} TFLOP) = ${parts.join(' + ')}` +
      `${t.transfer && t.host ? ' (the transfers overlap the host update; all in sequence: ' + secs(t.serialSeconds) + ')' : ''}`,
    `Schedule: ${t.schedule.steps.toLocaleString('en-US')} steps x ~${secs(t.seconds)} = ~${formatDuration(t.schedule.seconds)} for ${formatTokens(t.schedule.tokens)} tokens, ` +
      `~${Math.round(t.schedule.tokensPerSecond).toLocaleString('en-US')} tokens/s (training steps only: validation and checkpoints not counted)`,
    `  compute (${t.compute.basis}): ${t.compute.note}`,
  ];
  if (t.transfer) out.push(`  transfer (${t.transfer.basis}): ${t.transfer.note}`);
  if (t.host) out.push(`  host AdamW (${t.host.basis}): ${t.host.note}`);
  return out;
}
