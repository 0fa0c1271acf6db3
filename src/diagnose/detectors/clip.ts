/**
 * Clip-limited training: global-norm clipping removes most of the gradient in most steps.
 *
 * clippedFraction = 1 - clipCoef is the share of the gradient clipping removed. Clipping exists to
 * tame the rare spike. With AdamW a steady clip factor largely cancels (Adam divides by the
 * gradient's own running scale), so a gradient 2-3x above optim.clipNorm every step is not flagged
 * (the head-init fix arm clips ~65% in its first steps). When clipping removes >= 90% of the gradient (a norm
 * >= 10x clipNorm) in most steps, every step is a "spike": the norm says the loss sits in a steep
 * region (an overconfident head, saturated routers, a too-strong aux term, too high a rate), and
 * clipping no longer protects anything (docs/DESIGN.md §7.3; the first report: 99.5% every step).
 */
import { setValue, type RunContext } from '../context.ts';
import { fmt, median, pct, Ring } from '../stats.ts';
import type { DiagRecord, Finding } from '../types.ts';
import { isCleanStep, type Detector } from './detector.ts';

export const CLIP = {
  /** A step is "clip-limited" when clipping removed at least this share of its gradient. */
  heavy: 0.9,
  /** The finding fires when at least this share of the window's steps are clip-limited... */
  mostSteps: 0.75,
  /** ... over the last `window` clean steps (fewer at the start of a run, but at least `minSteps`). */
  window: 20,
  minSteps: 5,
  /** Error when the window's median clipped fraction is at least this (a norm >= 30x clipNorm). */
  errorMedian: 0.97,
} as const;

interface Step {
  step: number;
  clipped: number;
  gradNorm: number;
}

export function clipLimited(ctx: RunContext): Detector {
  const win = new Ring<Step>(CLIP.window);
  let first: number | null = null;
  let firstStepInfo: Step | null = null;
  let lastHeld: number | null = null;
  let lastStep = 0;
  let peakMedian = 0;
  let peakNorm = 0;
  let heldNow = false;
  let stepsHeld = 0;
  const cleanSteps: number[] = [];
  /** Clean steps after `step`. */
  const cleanSince = (step: number) => cleanSteps.filter((s) => s > step).length;

  return {
    observe(r: DiagRecord) {
      if (r.kind !== 'train') return;
      lastStep = r.step;
      if (!isCleanStep(r) || !Number.isFinite(r.clippedFraction)) return;
      win.push({ step: r.step, clipped: r.clippedFraction, gradNorm: r.gradNorm });
      cleanSteps.push(r.step);
      if (cleanSteps.length > 2 * CLIP.window) cleanSteps.splice(0, cleanSteps.length - CLIP.window - 1);
      const w = win.last();
      heldNow = false;
      if (w.length < CLIP.minSteps || ctx.clipNorm === 0) return;
      const heavy = w.filter((s) => s.clipped >= CLIP.heavy).length;
      if (heavy / w.length >= CLIP.mostSteps) {
        heldNow = true;
        stepsHeld++;
        if (first === null) {
          firstStepInfo = w.find((s) => s.clipped >= CLIP.heavy)!;
          first = firstStepInfo.step;
        }
        lastHeld = r.step;
        peakMedian = Math.max(peakMedian, median(w.map((s) => s.clipped)));
        peakNorm = Math.max(peakNorm, median(w.map((s) => s.gradNorm)));
      }
    },
    findings(): Finding[] {
      if (first === null) return [];
      const w = win.last();
      const med = median(w.map((s) => s.clipped));
      const norm = median(w.map((s) => s.gradNorm));
      const fixes: string[] = [];
      let note: string;
      let experiment: string | null = null;
      if (ctx.headStd > 0.1) {
        fixes.push('model.init.headStd=0.02');
        note = 'the large gradient comes from an overconfident head; std 0.02 starts it uninformed';
        experiment = 'head-init';
      } else if (ctx.routerStd > 0.1) {
        fixes.push('model.init.routerStd=0.006');
        note = 'saturated routers make a steep loss; a small router std starts them near uniform';
        experiment = 'router-init';
      } else if (ctx.auxFactor > 0.1) {
        fixes.push('loss.auxFactor=0.02', `loss.auxWarmupSteps=${Math.max(10, Math.round((ctx.steps ?? 1000) / 10))}`);
        note = 'a strong aux term adds its gradient to the global norm; keep it small and ramp it up';
        experiment = 'aux-loss';
      } else {
        if (ctx.lr !== null) fixes.push(`optim.lr=${setValue(ctx.lr / 3)}`);
        if (ctx.warmupSteps < 10) fixes.push(`schedule.warmupSteps=${Math.max(10, Math.round((ctx.steps ?? 100) / 10))}`);
        note = `no init or aux setting explains the norm: a lower rate and a warm-up make the first steps gentler; raising optim.clipNorm towards the typical norm (~${fmt(norm, 2)}) only hides it`;
      }
      return [
        {
          id: 'clip-limited',
          kind: 'clip-limited',
          severity: peakMedian >= CLIP.errorMedian ? 'error' : 'warning',
          title: 'Clipping removes most of every update',
          layer: null,
          evidence: [
            {
              step: first,
              text: `step ${first}: pre-clip gradient norm ${fmt(firstStepInfo!.gradNorm)}, clipping to ${fmt(ctx.clipNorm)} removed ${pct(firstStepInfo!.clipped)} of it`,
              values: { gradNorm: firstStepInfo!.gradNorm, clippedFraction: firstStepInfo!.clipped },
            },
            {
              step: first,
              text: `from step ${first}: clipping removed >= ${pct(CLIP.heavy)} of the gradient in >= ${pct(CLIP.mostSteps)} of the last ${CLIP.window} steps (all steps while fewer than ${CLIP.window}), judged at ${stepsHeld} step${stepsHeld === 1 ? '' : 's'} so far`,
              values: { firstStep: first, stepsHeld },
            },
            {
              step: lastStep,
              text: `last ${w.length} steps: median pre-clip gradient norm ${fmt(norm)} against optim.clipNorm ${fmt(ctx.clipNorm)}, median clipped fraction ${pct(med)} (peak window median ${pct(peakMedian)}, peak norm ${fmt(peakNorm)})`,
              values: { medianGradNorm: norm, clipNorm: ctx.clipNorm, medianClipped: med, peakMedianClipped: peakMedian },
            },
          ],
          cause: `the pre-clip gradient norm is ~${fmt(norm / Math.max(ctx.clipNorm, 1e-12), 2)}x optim.clipNorm in most steps: the loss is in a steep region, and the update the optimizer sees is scaled by ${fmt(1 - med, 2)} every step${ctx.headStd > 0.1 ? ` (head std ${fmt(ctx.headStd)})` : ''}`,
          fix: { sets: fixes, note },
          experiment,
          firstStep: first,
          lastStep: lastHeld ?? first,
          // Hysteresis: resolved once a whole window has passed without the condition.
          status: heldNow || (lastHeld !== null && cleanSince(lastHeld) < CLIP.window) ? 'ongoing' : 'resolved',
        },
      ];
    },
  };
}
