/**
 * Instability: loss spikes, divergence, and validation rising while training falls.
 *
 * loss-spikes: a ROLLING ROBUST Z-SCORE on log(main loss): against the median and MAD of the
 * previous `spikeWindow` clean steps (log, because loss noise is multiplicative), a step is a
 * spike when z >= `spikeZ` AND the loss is >= `spikeRatio` x the rolling median (the relative
 * floor keeps a near-zero MAD from calling noise a spike). Judged from step `minHistory` on. The
 * default run's largest step is z 2.0 / 1.46x; batches holding an outlier window (fixture
 * loss-spikes) reach 11-14x at z 5.3-5.9. A finding needs two spikes, or one >= `bigSpike`x.
 *
 * divergence: (a) a validation loss not finite, or above stability.divergenceFactor x the loss
 * before training (floored at 0.01), the engine's own rule (src/train/run/divergence.ts); (b) the
 * train main loss's rolling median of `trendWindow` clean steps above `trendRatio` x the best such
 * median so far, for `trendWindow` steps.
 *
 * no-progress: past `minProgressSteps` clean steps (and 20 beyond the LR warm-up), the train main
 * loss's rolling median of `trendWindow` steps is still >= `noProgress` x the loss it started
 * from: the model has learned close to nothing (the default run is at 0.4x its start by step 50).
 *
 * overfitting: the latest validation main loss >= `overfitRise` x the best earlier one (after
 * step 0) while the train main loss (median of the `trendWindow` steps before each) fell by >=
 * `overfitTrainFall` between the two validations.
 */
import { setValue, type RunContext } from '../context.ts';
import { fmt, mad, median, Ring, stepList } from '../stats.ts';
import type { DiagRecord, Finding } from '../types.ts';
import { isCleanStep, type Detector } from './detector.ts';

export const STABILITY = {
  spikeWindow: 50,
  minHistory: 20,
  spikeZ: 4,
  spikeRatio: 2.5,
  bigSpike: 4,
  /** A spike is recovered when the loss is back below this multiple of the pre-spike median within `recoverSteps`. */
  recoverRatio: 1.5,
  recoverSteps: 20,
  divergenceFloor: 0.01,
  trendWindow: 20,
  trendRatio: 2,
  minProgressSteps: 50,
  noProgress: 0.9,
  overfitRise: 1.05,
  overfitTrainFall: 0.05,
} as const;

interface Spike {
  step: number;
  loss: number;
  median: number;
  z: number;
  recoveredAt: number | null;
}

export function stability(ctx: RunContext): Detector {
  const hist = new Ring<number>(STABILITY.spikeWindow);
  const spikes: Spike[] = [];
  let lastStep = 0;
  // divergence
  let validRef: number | null = null;
  let validBad: { step: number; loss: number; why: string } | null = null;
  let validBadNow = false;
  const trend = new Ring<number>(STABILITY.trendWindow);
  let best = Infinity;
  let bestStep = 0;
  let trendBad: { first: number; last: number; median: number; best: number; bestStep: number } | null = null;
  let trendN = 0;
  // no-progress
  let initial: number | null = null;
  let clean = 0;
  let stuck: { first: number; last: number; median: number } | null = null;
  let stuckNow = false;
  let earlyMax: { step: number; loss: number } | null = null;
  // overfitting
  const valids: { step: number; lossMain: number; train: number }[] = [];
  let overfit: { bestStep: number; best: number; step: number; loss: number; trainAtBest: number; trainNow: number } | null = null;
  let overfitNow = false;
  let overfitFirst: number | null = null;

  return {
    observe(r: DiagRecord) {
      if (r.kind === 'valid') {
        if (r.step === 0) {
          if (Number.isFinite(r.loss) && (r.windows ?? 1) > 0) validRef = r.loss;
          if (Number.isFinite(r.lossMain)) initial ??= r.lossMain;
          return;
        }
        if ((r.windows ?? 1) === 0) return;
        const f = ctx.divergenceFactor;
        const why = !Number.isFinite(r.loss)
          ? 'not finite'
          : f > 0 && validRef !== null && r.loss > f * Math.max(validRef, STABILITY.divergenceFloor)
            ? `more than ${f}x the loss before training (${fmt(validRef)})`
            : null;
        validBadNow = why !== null;
        if (why && !validBad) validBad = { step: r.step, loss: r.loss, why };
        const trainNow = median(trend.last());
        valids.push({ step: r.step, lossMain: r.lossMain, train: trainNow });
        const earlier = valids.slice(0, -1).filter((v) => Number.isFinite(v.lossMain));
        if (earlier.length && Number.isFinite(r.lossMain)) {
          const b = earlier.reduce((a, v) => (v.lossMain < a.lossMain ? v : a));
          if (
            r.lossMain >= STABILITY.overfitRise * b.lossMain &&
            Number.isFinite(b.train) &&
            Number.isFinite(trainNow) &&
            trainNow <= (1 - STABILITY.overfitTrainFall) * b.train
          ) {
            overfit = { bestStep: b.step, best: b.lossMain, step: r.step, loss: r.lossMain, trainAtBest: b.train, trainNow };
            overfitNow = true;
            overfitFirst ??= r.step;
          } else overfitNow = false;
        }
        return;
      }
      lastStep = r.step;
      if (!isCleanStep(r) || !(r.lossMain > 0)) return;
      clean++;
      initial ??= r.lossMain;
      if (clean <= STABILITY.minHistory && (!earlyMax || r.lossMain > earlyMax.loss)) earlyMax = { step: r.step, loss: r.lossMain };
      const x = Math.log(r.lossMain);
      const prev = hist.last();
      if (prev.length >= STABILITY.minHistory) {
        const m = median(prev);
        const d = 1.4826 * mad(prev, m);
        const z = d > 0 ? (x - m) / d : x > m ? Infinity : 0;
        const ratio = Math.exp(x - m);
        if (z >= STABILITY.spikeZ && ratio >= STABILITY.spikeRatio) spikes.push({ step: r.step, loss: r.lossMain, median: Math.exp(m), z, recoveredAt: null });
      }
      for (const s of spikes)
        if (s.recoveredAt === null && s.step < r.step && r.step - s.step <= STABILITY.recoverSteps && r.lossMain <= STABILITY.recoverRatio * s.median)
          s.recoveredAt = r.step;
      hist.push(x);
      trend.push(r.lossMain);
      if (trend.length >= STABILITY.trendWindow) {
        const m = median(trend.last());
        if (m < best) {
          best = m;
          bestStep = r.step;
        }
        if (initial !== null && clean >= Math.max(STABILITY.minProgressSteps, ctx.warmupSteps + 20)) {
          stuckNow = m >= STABILITY.noProgress * initial;
          if (stuckNow) {
            stuck ??= { first: r.step, last: r.step, median: m };
            stuck.last = r.step;
            stuck.median = m;
          }
        }
        if (m > STABILITY.trendRatio * best) {
          trendN++;
          if (trendN >= STABILITY.trendWindow) {
            trendBad ??= { first: r.step - trendN + 1, last: r.step, median: m, best, bestStep };
            trendBad.last = r.step;
            trendBad.median = m;
          }
        } else trendN = 0;
      }
    },
    findings(): Finding[] {
      const out: Finding[] = [];
      const lrFix = ctx.lr !== null ? [`optim.lr=${setValue(ctx.lr / 3)}`] : [];
      const calmFix = [
        ...lrFix,
        ...(ctx.clipNorm === 0 ? ['optim.clipNorm=1'] : []),
        ...(ctx.warmupSteps < 10 ? [`schedule.warmupSteps=${Math.max(10, Math.round((ctx.steps ?? 100) / 10))}`] : []),
      ];
      const big = spikes.filter((s) => s.loss >= STABILITY.bigSpike * s.median);
      if (spikes.length >= 2 || big.length) {
        const extreme = ctx.data?.windowStats?.extremeWindows ?? 0;
        const worst = spikes.reduce((a, s) => (s.loss / s.median > a.loss / a.median ? s : a));
        const last = spikes[spikes.length - 1]!;
        const unrecovered = last.recoveredAt === null && lastStep - last.step <= STABILITY.recoverSteps;
        out.push({
          id: 'loss-spikes',
          kind: 'loss-spikes',
          severity: 'warning',
          title: 'Loss spikes',
          layer: null,
          evidence: [
            {
              step: worst.step,
              text: `${spikes.length} spike${spikes.length === 1 ? '' : 's'} (robust z >= ${STABILITY.spikeZ} and >= ${STABILITY.spikeRatio}x the median of the previous ${STABILITY.spikeWindow} steps) at step${spikes.length === 1 ? '' : 's'} ${stepList(spikes.map((s) => s.step))}; the largest at step ${worst.step}: main loss ${fmt(worst.loss)} against a median ${fmt(worst.median)} (${fmt(worst.loss / worst.median, 3)}x, z ${fmt(worst.z, 3)})`,
              values: { spikes: spikes.length, worstStep: worst.step, worstLoss: worst.loss, worstMedian: worst.median, worstZ: worst.z },
            },
            {
              step: last.step,
              text:
                last.recoveredAt !== null
                  ? `the last spike (step ${last.step}) recovered by step ${last.recoveredAt}`
                  : `the last spike (step ${last.step}) has not come back below ${STABILITY.recoverRatio}x its median`,
              values: { recoveredAt: last.recoveredAt },
            },
          ],
          cause: extreme
            ? `${extreme} training window${extreme === 1 ? '' : 's'} hold normalised values beyond 50 (see data-extreme-values): a batch that draws one has a loss many times its neighbours'`
            : `single batches push the loss far above its trend: a rate too high for the curvature${ctx.clipNorm === 0 ? ', with no gradient clipping (optim.clipNorm 0)' : ''}, or outlier windows in the data (header.json data statistics would show them)`,
          fix: extreme
            ? {
                sets: [ctx.normalize === 'none' ? 'data.normalize=window' : 'data.normalize=series'],
                note: 'keep outlier windows from dominating a batch: normalise by the series (or clean the spikes out of the data)',
              }
            : {
                sets: calmFix,
                note: 'a lower peak rate (and clipping, a warm-up) damps spikes; if they follow particular windows, look at the data (extreme values)',
              },
          experiment: null,
          firstStep: spikes[0]!.step,
          lastStep: last.step,
          status: unrecovered ? 'ongoing' : 'resolved',
        });
      }
      if (validBad || trendBad) {
        const ev = [];
        if (validBad)
          ev.push({
            step: validBad.step,
            text: `validation loss ${fmt(validBad.loss)} at step ${validBad.step}: ${validBad.why} (stability.divergenceFactor ${ctx.divergenceFactor})`,
            values: { validLoss: validBad.loss, reference: validRef },
          });
        if (trendBad)
          ev.push({
            step: trendBad.first,
            text: `train main loss: the median of ${STABILITY.trendWindow} steps rose to ${fmt(trendBad.median)}, above ${STABILITY.trendRatio}x its best ${fmt(trendBad.best)} (step ${trendBad.bestStep}), for ${STABILITY.trendWindow}+ steps from step ${trendBad.first}`,
            values: { median: trendBad.median, best: trendBad.best, bestStep: trendBad.bestStep },
          });
        const nonFinite = validBad?.why === 'not finite';
        out.push({
          id: 'divergence',
          kind: 'divergence',
          severity: 'error',
          title: nonFinite ? 'The run diverged: validation loss not finite' : 'The run diverged: the loss grew far above its best',
          layer: null,
          evidence: ev,
          cause: nonFinite
            ? 'the weights hold NaN/Inf (see the non-finite finding for where it was born)'
            : 'training made the model worse: the updates are too large for the loss surface (rate, missing clip or warm-up), or a broken component (see the other findings)',
          fix: {
            sets: nonFinite && !ctx.guards ? ['stability.guards=true', ...lrFix] : calmFix,
            note: 'resume from the last checkpoint marked latest (the engine saves diverged-step-N checkpoints apart) with a gentler schedule',
          },
          experiment: nonFinite ? 'nan' : null,
          firstStep: Math.min(validBad?.step ?? Infinity, trendBad?.first ?? Infinity),
          lastStep: Math.max(validBad?.step ?? -Infinity, trendBad?.last ?? -Infinity),
          status: validBadNow || trendN > 0 ? 'ongoing' : 'resolved',
        });
      }
      if (stuck && initial !== null) {
        const lr = ctx.lr;
        const high = lr !== null && lr >= 0.01;
        const low = lr !== null && lr <= 1e-5;
        const b = ctx.baseline;
        out.push({
          id: 'no-progress',
          kind: 'no-progress',
          severity: 'warning',
          title: 'The main loss is not falling',
          layer: null,
          evidence: [
            {
              step: stuck.last,
              text: `train main loss: median of the last ${STABILITY.trendWindow} steps ${fmt(stuck.median)} at step ${stuck.last}, ${fmt(stuck.median / initial, 3)}x the ${fmt(initial)} it started from${b ? ` (no-information baseline ${fmt(b.loss)})` : ''}`,
              values: { median: stuck.median, initial, baseline: b?.loss ?? null },
            },
            ...(earlyMax && earlyMax.loss > 2 * initial
              ? [
                  {
                    step: earlyMax.step,
                    text: `it jumped to ${fmt(earlyMax.loss)} at step ${earlyMax.step} (${fmt(earlyMax.loss / initial, 3)}x the start)`,
                    values: { step: earlyMax.step, loss: earlyMax.loss },
                  },
                ]
              : []),
          ],
          cause: high
            ? `optim.lr ${fmt(lr)} is very high (1e-3 is typical for this model size${ctx.clipNorm === 0 ? ', and clipping is off' : ''}): the first updates overshoot, layers saturate (routers, activations), and what is left learns nothing`
            : low
              ? `optim.lr ${fmt(lr)} is so low that the weights barely move`
              : 'the updates do not reduce the loss: see the other findings (clipping, routing, non-finite); otherwise the targets may carry no learnable signal (data)',
          fix: {
            sets: high
              ? [
                  'optim.lr=0.001',
                  ...(ctx.clipNorm === 0 ? ['optim.clipNorm=1'] : []),
                  ...(ctx.warmupSteps < 10 ? [`schedule.warmupSteps=${Math.max(10, Math.round((ctx.steps ?? 100) / 10))}`] : []),
                ]
              : low
                ? ['optim.lr=0.001']
                : [],
            note: high || low ? 'the default rate (1e-3 with AdamW, clip 1.0 and a warm-up) trains this model' : 'no single setting explains it',
          },
          experiment: null,
          firstStep: stuck.first,
          lastStep: stuck.last,
          status: stuckNow ? 'ongoing' : 'resolved',
        });
      }
      if (overfit) {
        const o = overfit;
        const step = o.step;
        out.push({
          id: 'overfitting',
          kind: 'overfitting',
          severity: 'warning',
          title: 'Validation loss rises while the train loss falls',
          layer: null,
          evidence: [
            {
              step,
              text: `${overfitFirst !== null && overfitFirst !== step ? `first seen at step ${overfitFirst}; ` : ''}validation main loss ${fmt(o.loss)} at step ${step}, ${fmt(o.loss / o.best, 3)}x its best ${fmt(o.best)} (step ${o.bestStep}), while the train main loss fell ${fmt(o.trainAtBest)} → ${fmt(o.trainNow)} (median of ${STABILITY.trendWindow} steps)`,
              values: { ...o, step },
            },
          ],
          cause: 'the model fits the training windows at the expense of unseen ones: too many passes over too little data, or too little regularisation',
          fix: {
            sets: [`schedule.steps=${o.bestStep}`, `optim.weightDecay=${setValue(Math.max(0.1, ctx.weightDecay * 2))}`],
            note: `stop near the best validation (step ${o.bestStep}) or regularise more; more data (a smaller data.stride gives more windows) helps most`,
          },
          experiment: null,
          firstStep: overfitFirst ?? step,
          lastStep: step,
          status: overfitNow ? 'ongoing' : 'resolved',
        });
      }
      return out;
    },
  };
}
