/**
 * Non-finite values (docs/DESIGN.md §7.4) and f16 loss scaling.
 *
 * non-finite: a step is bad when the guards skipped it (not for an f16 overflow) or named a
 * non-finite tensor, or when an UNskipped step logged a non-finite loss or gradient norm (guards
 * off: the update wrote NaN into the weights, so every later step is NaN). The first bad tensor
 * in forward order (nonFinite[0]) names where the NaN was born. One skipped step that does not
 * recur is the guards doing their job: a note, not a finding (the nan experiment's fix arm). Two
 * or more are a warning (it recurs; the sites are listed); `maxConsecutiveBadSteps` in a row (the
 * run stops there) or any applied NaN is an error.
 *
 * nan-logged-as-zero: a train record with loss exactly 0 next to a non-finite gradient norm is a
 * logger that turned NaN into 0 (the second report: "loss 0, grad_norm nan after step 1").
 *
 * loss-scale-collapse (f16): the loss scale reached its floor (precision.minScale) and the
 * gradients are still not finite there (overflows at the floor are bad steps), or it stays at the
 * floor for `floorSteps`: it is not a range problem the scaler can solve. overflow-skips: >= `overflowsPer100` overflow skips within 100 steps after
 * the scale first settled (the halvings at the start find the scale and are expected; GradScaler
 * grows the scale every growthInterval steps and one overflow per growth is normal).
 */
import { setValue, type RunContext } from '../context.ts';
import { fmt, stepList } from '../stats.ts';
import type { BadTensor, DiagRecord, Finding, Note, TrainRecord } from '../types.ts';
import type { Detector } from './detector.ts';

export const NON_FINITE = {
  /** Skipped steps that make a finding (fewer: a note). */
  recurring: 2,
  overflowsPer100: 3,
  /** Steps at the floor without an overflow there that still count as a collapse. */
  floorSteps: 10,
  /** overflow-skips is resolved after this many steps without an overflow. */
  quietSteps: 20,
} as const;

interface Bad {
  step: number;
  site: BadTensor | null;
  applied: boolean;
}

const siteText = (b: BadTensor | null) => (b ? `${b.name}${b.layer >= 0 ? ` (layer ${b.layer})` : ''}` : 'an unnamed tensor (the gradient norm)');
const finiteText = (b: BadTensor) =>
  Number.isFinite(b.min) && Number.isFinite(b.max)
    ? `${fmt(b.nonFinite)} non-finite values; finite min ${fmt(b.min)} max ${fmt(b.max)} mean ${fmt(b.mean)}`
    : `${fmt(b.nonFinite)} non-finite values, no finite value at all`;

export function nonFinite(ctx: RunContext): Detector {
  const bad: Bad[] = [];
  let consecutive = 0;
  let longest = 0;
  let lastStep = 0;
  let lastBad = false;
  const zeroLogged: number[] = [];
  // f16
  let settled = false;
  const overflows: number[] = [];
  let floor: { first: number; last: number; badAtFloor: number | null; steps: number; startScale: number | null } | null = null;
  let startScale: number | null = null;
  let lastScale: number | null = null;
  let lastFloorStep = -1;

  const isBad = (r: TrainRecord) =>
    (r.overflow !== true && (r.skipped || r.nonFinite.length > 0)) || (!r.skipped && (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)));

  return {
    observe(r: DiagRecord) {
      if (r.kind !== 'train') return;
      lastStep = r.step;
      if (r.loss === 0 && r.lossMain === 0 && !Number.isFinite(r.gradNorm)) zeroLogged.push(r.step);
      const b = isBad(r);
      lastBad = b;
      if (b) {
        const applied = !r.skipped && (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm));
        bad.push({ step: r.step, site: r.nonFinite[0] ?? null, applied });
        consecutive++;
        longest = Math.max(longest, consecutive);
      } else consecutive = 0;
      if (r.lossScale !== undefined && Number.isFinite(r.lossScale)) {
        startScale ??= r.lossScale;
        lastScale = r.lossScale;
        if (r.overflow) {
          if (settled) overflows.push(r.step);
        } else settled = true;
        const atFloor = ctx.activations === 'f16' && r.lossScale <= ctx.minScale && (startScale > ctx.minScale || r.overflow === true);
        if (atFloor) {
          floor ??= { first: r.step, last: r.step, badAtFloor: null, steps: 0, startScale };
          floor.last = r.step;
          floor.steps++;
          // At the floor an overflow is no longer retried at a lower scale: it is a skipped (bad) step.
          if ((r.overflow || r.skipped) && floor.badAtFloor === null) floor.badAtFloor = r.step;
          lastFloorStep = r.step;
        }
      }
    },
    findings(): Finding[] {
      const out: Finding[] = [];
      const applied = bad.filter((b) => b.applied);
      const skipped = bad.filter((b) => !b.applied);
      if (applied.length || skipped.length >= NON_FINITE.recurring) {
        const first = bad[0]!;
        const named = bad.find((b) => b.site) ?? first;
        const sites = [...new Set(bad.filter((b) => b.site).map((b) => siteText(b.site)))];
        const sameSite = sites.length <= 1;
        const severity = applied.length || longest >= ctx.maxConsecutiveBadSteps ? 'error' : 'warning';
        const router = named.site?.name.includes('router_logits');
        const sets: string[] = [];
        let note: string;
        if (applied.length && !ctx.guards) {
          sets.push('stability.guards=true');
          note =
            'the guards skip a non-finite step on the GPU (weights and AdamW state untouched), name the first bad tensor, and stop after stability.maxConsecutiveBadSteps; resume from the last good checkpoint';
        } else {
          if (ctx.activations === 'f16') sets.push('precision.activations=f32');
          if (router) sets.push('loss.zCoef=0.001');
          if (ctx.lr !== null) sets.push(`optim.lr=${setValue(ctx.lr / 3)}`);
          note = `${router ? 'the router z-loss keeps router logits small; ' : ''}a lower rate keeps activations in range${ctx.activations === 'f16' ? '; f32 activations rule out an f16 range problem' : ''}; if the first bad tensor is an input-side one, check the data for NaN/Inf (data.nonFinite)`;
        }
        out.push({
          id: 'non-finite',
          kind: 'non-finite',
          severity,
          title: applied.length
            ? 'NaN reached the weights: every later step is non-finite'
            : `Non-finite values recur${named.site ? ` in ${siteText(named.site)}` : ''}`,
          layer: named.site && named.site.layer >= 0 ? named.site.layer : null,
          evidence: [
            {
              step: named.step,
              text: `first bad tensor at step ${named.step}: ${siteText(named.site)}${named.site ? `, ${finiteText(named.site)}` : ''}`,
              values: { step: named.step, tensor: named.site?.name ?? null, layer: named.site?.layer ?? null },
            },
            {
              step: null,
              text: `${bad.length} bad step${bad.length === 1 ? '' : 's'} (${stepList(bad.map((b) => b.step))}): ${skipped.length} skipped by the guards, ${applied.length} applied (loss or gradient norm non-finite on an unskipped step); longest run ${longest} in a row${sites.length ? `; sites: ${sites.slice(0, 4).join(', ')}${sites.length > 4 ? ', ...' : ''}${sameSite ? ' (the same site each time)' : ''}` : ''}`,
              values: { badSteps: bad.length, skipped: skipped.length, applied: applied.length, longest, sites: sites.join('; ') },
            },
          ],
          cause: applied.length
            ? `${ctx.guards ? 'a NaN was born where no guard looks' : 'stability.guards is off'}: the step's NaN gradients went through AdamW into the weights and both moment buffers, so every forward pass after step ${applied[0]!.step} is NaN although the data is clean. A logger that filters NaN would print loss 0 here (docs/DESIGN.md §7.4)`
            : `the forward or backward pass produces NaN/Inf ${sameSite ? `at the same site (${sites[0] ?? 'the gradient norm'})` : 'at several sites'} again and again; each bad step is skipped, but the run loses those updates${longest >= ctx.maxConsecutiveBadSteps ? ` and stopped after ${longest} in a row` : ''}`,
          fix: { sets, note },
          experiment: 'nan',
          firstStep: first.step,
          lastStep: bad[bad.length - 1]!.step,
          status: lastBad ? 'ongoing' : 'resolved',
        });
      }
      if (zeroLogged.length) {
        out.push({
          id: 'nan-logged-as-zero',
          kind: 'nan-logged-as-zero',
          severity: 'error',
          title: 'Loss logged as 0 next to a NaN gradient norm',
          layer: null,
          evidence: [
            {
              step: zeroLogged[0]!,
              text: `loss 0 with a non-finite gradient norm at step${zeroLogged.length === 1 ? '' : 's'} ${stepList(zeroLogged)}`,
              values: { steps: zeroLogged.length },
            },
          ],
          cause:
            'a logger replaced a non-finite loss by 0: the run looks converged while its weights are NaN (docs/DESIGN.md §7.4). The engine writes NaN as "NaN"; these metrics came through a filter',
          fix: {
            sets: ['stability.guards=true'],
            note: 'log with train.js (non-finite numbers are written as "NaN"), keep the guards on, and resume from the last checkpoint before the first NaN',
          },
          experiment: 'nan',
          firstStep: zeroLogged[0]!,
          lastStep: zeroLogged[zeroLogged.length - 1]!,
          status: zeroLogged[zeroLogged.length - 1] === lastStep ? 'ongoing' : 'resolved',
        });
      }
      const collapsed = floor !== null && (floor.badAtFloor !== null || floor.steps >= NON_FINITE.floorSteps);
      if (floor && collapsed) {
        out.push({
          id: 'loss-scale-collapse',
          kind: 'loss-scale-collapse',
          severity: 'error',
          title: 'f16 loss scale collapsed to its floor',
          layer: null,
          evidence: [
            {
              step: floor.first,
              text: `the loss scale fell from ${fmt(floor.startScale)} to the floor precision.minScale ${fmt(ctx.minScale)} at step ${floor.first}${floor.badAtFloor !== null ? `; the gradients were still not finite there at step ${floor.badAtFloor} (a bad step, skipped by the guards)` : ''}; ${floor.steps} step${floor.steps === 1 ? '' : 's'} at the floor${overflows.length ? `; ${overflows.length} overflow skip${overflows.length === 1 ? '' : 's'} on the way (${stepList(overflows)})` : ''}`,
              values: {
                startScale: floor.startScale,
                minScale: ctx.minScale,
                firstAtFloor: floor.first,
                badAtFloor: floor.badAtFloor,
                stepsAtFloor: floor.steps,
              },
            },
          ],
          cause:
            'the scaled gradients overflow f16 at every scale down to the floor: the values are not finite at any scale, so it is not a range problem the scaler can fix (a NaN in the forward, or activations beyond f16)',
          fix: {
            sets: ['precision.activations=f32', ...(ctx.lr !== null ? [`optim.lr=${setValue(ctx.lr / 3)}`] : [])],
            note: 'train in f32 to see whether the NaN remains (then the guards name it), or lower the rate',
          },
          experiment: null,
          firstStep: floor.first,
          lastStep: floor.last,
          status: lastFloorStep === lastStep && lastScale !== null && lastScale <= ctx.minScale ? 'ongoing' : 'resolved',
        });
      }
      const recent = overflows.filter((s) => s > lastStep - 100);
      const windowFired = overflows.some(
        (s, i) => i + NON_FINITE.overflowsPer100 - 1 < overflows.length && overflows[i + NON_FINITE.overflowsPer100 - 1]! - s < 100,
      );
      // A collapsed scale says more than the overflows on its way down.
      if (windowFired && !collapsed) {
        out.push({
          id: 'overflow-skips',
          kind: 'overflow-skips',
          severity: 'warning',
          title: 'Repeated f16 overflow skips',
          layer: null,
          evidence: [
            {
              step: overflows[0]!,
              text: `${overflows.length} overflow skips after the scale settled (${stepList(overflows)}), ${recent.length} in the last 100 steps; each skipped step is a lost update`,
              values: { overflows: overflows.length, recent: recent.length },
            },
          ],
          cause: 'the gradients keep overflowing f16 after the loss scale found its level: the activations or gradients have outliers beyond the f16 range',
          fix: {
            sets: ['precision.activations=f32', 'precision.growthInterval=1000'],
            note: 'f32 activations remove the range limit; a longer growth interval makes the scaler probe the limit less often',
          },
          experiment: null,
          firstStep: overflows[0]!,
          lastStep: overflows[overflows.length - 1]!,
          status: lastStep - overflows[overflows.length - 1]! < NON_FINITE.quietSteps ? 'ongoing' : 'resolved',
        });
      }
      return out;
    },
    notes(): Note[] {
      const skipped = bad.filter((b) => !b.applied);
      if (bad.length === 0 || bad.some((b) => b.applied) || skipped.length >= NON_FINITE.recurring) return [];
      const b = skipped[0]!;
      return [
        {
          step: b.step,
          text: `step ${b.step} was skipped by the guards: first non-finite tensor ${siteText(b.site)}${b.site ? ` (${finiteText(b.site)})` : ''}; weights and optimizer state untouched${lastStep > b.step ? ', not repeated since' : ''}`,
        },
      ];
    },
  };
}
