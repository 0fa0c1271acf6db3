/**
 * Bad start: the loss before training far above the no-information baseline (docs/FINDINGS.md).
 *
 * The initial loss is the main loss of the validation before training (the step-0 valid record),
 * else of the first train step. A model that knows nothing should start AT the baseline: ln C for
 * C classes, or the Huber loss of predicting the window mean when forecasting. An untrained model
 * with the default inits (head std 0.02) starts within ~1% of it (its outputs are ~0.02·√d ≈ 0.16
 * in size), so a start 1.5x above it is no noise: the model is confidently wrong before it has
 * seen any data, and the first steps are spent undoing the init (docs/DESIGN.md §7.3).
 */
import type { RunContext } from '../context.ts';
import { fmt } from '../stats.ts';
import type { DiagRecord, Finding } from '../types.ts';
import { isCleanStep, type Detector } from './detector.ts';

export const BAD_START = {
  /** Warning above this multiple of the baseline. */
  warnRatio: 1.5,
  /** Error above this multiple. */
  errorRatio: 2,
  /** ... and at least this far above it in absolute terms (a baseline near 0, e.g. constant data, makes ratios meaningless). */
  minExcess: 0.1,
  /** The finding is resolved once the median train main loss of the last `recentSteps` steps is within this multiple of the baseline. */
  resolvedRatio: 1.1,
  recentSteps: 5,
  /** A head std above this is named as the cause (the default is 0.02; std 1.0 is the reproduced failure). */
  largeHeadStd: 0.1,
} as const;

export function badStart(ctx: RunContext): Detector {
  let initial: { step: number; loss: number; what: string } | null = null;
  let firstTrain: { step: number; loss: number } | null = null;
  const recent: number[] = [];
  let lastStep = 0;
  let belowStep: number | null = null;

  return {
    observe(r: DiagRecord) {
      if (r.kind === 'valid') {
        if (r.step === 0 && initial === null && Number.isFinite(r.lossMain))
          initial = { step: 0, loss: r.lossMain, what: `validation ${ctx.task === 'classify' ? 'cross-entropy' : 'main loss (Huber)'} before training` };
        return;
      }
      lastStep = r.step;
      if (!isCleanStep(r)) return;
      if (firstTrain === null) firstTrain = { step: r.step, loss: r.lossMain };
      // Only step 1 is a start (a resumed segment pushed without its history starts later: not judged).
      if (initial === null && r.step === 1) initial = { step: r.step, loss: r.lossMain, what: `train main loss at step ${r.step}` };
      recent.push(r.lossMain);
      if (recent.length > BAD_START.recentSteps) recent.shift();
      if (belowStep === null && ctx.baseline && r.lossMain <= ctx.baseline.loss) belowStep = r.step;
    },
    findings(): Finding[] {
      const b = ctx.baseline;
      if (!b || !initial) return [];
      const ratio = initial.loss / b.loss;
      const excess = initial.loss - b.loss;
      if (!(initial.loss > BAD_START.warnRatio * b.loss && excess >= BAD_START.minExcess)) return [];
      const severity = initial.loss > BAD_START.errorRatio * b.loss ? 'error' : 'warning';
      const sorted = [...recent].sort((x, y) => x - y);
      const recentMedian = sorted.length ? sorted[sorted.length >> 1]! : NaN;
      const resolved = recent.length >= BAD_START.recentSteps && recentMedian <= BAD_START.resolvedRatio * b.loss;
      const bigHead = ctx.headStd > BAD_START.largeHeadStd;
      const classify = ctx.task === 'classify';
      const logitStd = ctx.hidden ? ctx.headStd * Math.sqrt(ctx.hidden) : null;
      const cause = bigHead
        ? `the ${classify ? 'classification' : 'forecast'} head is initialised with std ${fmt(ctx.headStd)} (model.init.headStd; default 0.02): its outputs start ${logitStd ? `with std ≈ ${fmt(ctx.headStd)}·√${ctx.hidden} ≈ ${fmt(logitStd, 2)}` : 'large'}${classify ? `, so the softmax over ${ctx.numClasses ?? 'C'} classes is confidently wrong before training` : ', far from the window mean an uninformed forecaster predicts'}. The large loss has a large gradient, which global-norm clipping then scales down every step (docs/DESIGN.md §7.3)`
        : `the untrained model's outputs are far from an uninformed prediction although the head std is ${fmt(ctx.headStd)}: look at the init of the other layers (model.init.std, model.init.embeddingStd)${ctx.task === 'forecast' && ctx.normalize === 'none' ? ' and at the data scale: data.normalize is "none", so the inputs and targets keep their raw size' : ''}`;
      const sets = bigHead ? ['model.init.headStd=0.02'] : ctx.task === 'forecast' && ctx.normalize === 'none' ? ['data.normalize=window'] : [];
      return [
        {
          id: 'bad-start',
          kind: 'bad-start',
          severity,
          title: classify ? 'Initial loss far above ln C: an overconfident classification head' : 'Initial loss far above predicting the window mean',
          layer: null,
          evidence: [
            {
              step: initial.step,
              text: `${initial.what}: ${fmt(initial.loss)}, ${fmt(ratio, 3)}x the no-information baseline ${fmt(b.loss)} (${b.how})`,
              values: { initialLoss: initial.loss, baseline: b.loss, ratio, baselineKind: b.kind },
            },
            ...(firstTrain && firstTrain.step !== initial.step
              ? [{ step: firstTrain.step, text: `train main loss at step ${firstTrain.step}: ${fmt(firstTrain.loss)}`, values: { loss: firstTrain.loss } }]
              : []),
            // Before the first step there is nothing to say about the train loss yet.
            ...(belowStep !== null
              ? [{ step: belowStep, text: `the train main loss first reached the baseline at step ${belowStep}`, values: { step: belowStep } }]
              : recent.length
                ? [
                    {
                      step: lastStep,
                      text: `the train main loss has not reached the baseline by step ${lastStep} (median of the last ${recent.length} steps ${fmt(recentMedian)})`,
                      values: { recentMedian },
                    },
                  ]
                : []),
          ],
          cause,
          fix: {
            sets,
            note: bigHead
              ? `head std 0.02 starts the loss at the baseline (${fmt(b.loss)})`
              : 'no single config change is known to fix this; compare against a run with the default inits',
          },
          experiment: bigHead ? 'head-init' : null,
          firstStep: initial.step,
          lastStep: resolved ? (belowStep ?? lastStep) : lastStep,
          status: resolved ? 'resolved' : 'ongoing',
        },
      ];
    },
  };
}
