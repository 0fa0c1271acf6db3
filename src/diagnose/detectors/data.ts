/**
 * Data problems visible in the statistics the run records in header.json `data` (DataStats:
 * the data report's counts plus summarizeWindows()). Judged once, before training (step 0).
 *
 * data-constant-windows: >= `constantShare` of the training windows are constant (all inputs
 * equal). Window normalisation maps them to zeros with zero labels: the model learns to output 0,
 * and the loss looks low for a reason that has nothing to do with forecasting. Error from
 * `constantError`.
 * data-extreme-values: >= `extremeShare` (0.1%) of the windows have a normalised value beyond
 * EXTREME_VALUE (50): a window of unit spread followed by a jump of 50 spreads (a level shift, a
 * spike, or a nearly flat window whose small std blows up the next point). Huber at 50 is ~100,
 * against ~0.5 for a typical point: one such window dominates its batch's loss and gradient, and
 * at 0.1% a batch of 16 holds one every ~60 steps. Calibration: over the ten bundled data sets at
 * context 32 and 64 the largest |normalised label| is 8.6 and no window is extreme.
 * data-too-few-windows: fewer training windows than one optimizer step draws (microBatch x
 * accumulation: the batch repeats windows), or more than `maxEpochs` passes over them (the run
 * memorises them), or no validation windows (divergence and overfitting cannot be judged).
 */
import type { RunContext } from '../context.ts';
import { EXTREME_VALUE } from '../data-stats.ts';
import { fmt, pct } from '../stats.ts';
import type { DiagRecord, Finding } from '../types.ts';
import type { Detector } from './detector.ts';

export const DATA = {
  constantShare: 0.1,
  constantError: 0.5,
  extremeShare: 0.001,
  maxEpochs: 100,
} as const;

export function dataProblems(ctx: RunContext): Detector {
  const findings: Finding[] = [];
  const d = ctx.data;
  if (d) {
    const w = d.windowStats;
    const base = { layer: null, firstStep: 0, lastStep: 0, status: 'ongoing' as const };
    if (w && w.windows > 0 && w.constantWindows / w.windows >= DATA.constantShare) {
      const share = w.constantWindows / w.windows;
      findings.push({
        ...base,
        id: 'data-constant-windows',
        kind: 'data-constant-windows',
        severity: share >= DATA.constantError ? 'error' : 'warning',
        title: 'Many training windows are constant',
        evidence: [
          {
            step: null,
            text: `${w.constantWindows} of ${w.windows} training windows (${pct(share)}) have all inputs equal${d.constantSeries ? `; ${d.constantSeries} of ${d.seriesOut ?? '?'} series are constant` : ''}${d.source ? ` (${d.source})` : ''}`,
            values: { constantWindows: w.constantWindows, windows: w.windows, share, constantSeries: d.constantSeries ?? null },
          },
        ],
        cause: `constant stretches (a stuck sensor, padding, a filled gap) normalise to all-zero windows with zero targets: the model is rewarded for predicting 0, and the loss says little`,
        fix: {
          sets: [],
          note: 'no config key drops flat windows: remove the flat stretches from the series before training (if they are repaired NaN gaps, data.nonFinite=drop-series drops those series instead of filling them)',
        },
        experiment: null,
      });
    }
    if (w && w.windows > 0 && w.extremeWindows / w.windows >= DATA.extremeShare) {
      const share = w.extremeWindows / w.windows;
      findings.push({
        ...base,
        id: 'data-extreme-values',
        kind: 'data-extreme-values',
        severity: 'warning',
        title: 'Extreme values after normalisation',
        evidence: [
          {
            step: null,
            text: `${w.extremeWindows} of ${w.windows} windows (${pct(share)}) have a normalised value beyond ${EXTREME_VALUE}; largest |input| ${fmt(w.maxAbsInput)}, |label| ${fmt(w.maxAbsLabel)} (99th percentile of a window's largest label ${fmt(w.p99AbsLabel)}); normalisation scale over windows ${fmt(w.scale.min)}..${fmt(w.scale.max)} (median ${fmt(w.scale.median)})`,
            values: {
              extremeWindows: w.extremeWindows,
              windows: w.windows,
              maxAbsInput: w.maxAbsInput,
              maxAbsLabel: w.maxAbsLabel,
              p99AbsLabel: w.p99AbsLabel,
              scaleMin: w.scale.min,
              scaleMax: w.scale.max,
            },
          },
        ],
        cause:
          ctx.normalize === 'none'
            ? 'data.normalize is "none": the raw values reach the model unscaled'
            : `the next point sits far outside its window's spread (jumps, spikes, or near-flat windows whose tiny std blows up the next point); with window normalisation a window with std ${fmt(w.scale.min)} magnifies any move`,
        fix: {
          sets: [ctx.normalize === 'none' ? 'data.normalize=window' : 'data.normalize=series'],
          note:
            ctx.normalize === 'none'
              ? 'normalise each window (x - mean) / std'
              : "series normalisation uses each series' own train statistics, which a near-flat window cannot blow up; or clean the spikes out of the data",
        },
        experiment: null,
      });
    }
    const batch = (ctx.microBatch ?? 0) * ctx.accumulation;
    const tw = d.trainWindows;
    const problems: string[] = [];
    const values: Record<string, number | null> = { trainWindows: tw ?? null, validWindows: d.validWindows ?? null, perStep: batch || null };
    let severity: 'error' | 'warning' = 'warning';
    const sets: string[] = [];
    if (tw !== undefined && batch > 0 && tw < batch) {
      severity = 'error';
      problems.push(
        `${tw} training windows for ${batch} per optimizer step (schedule.microBatch ${ctx.microBatch} x accumulation ${ctx.accumulation}): every step repeats windows`,
      );
      sets.push(`schedule.microBatch=${Math.max(1, Math.floor(tw / ctx.accumulation))}`);
    }
    const epochs = tw && batch && ctx.steps ? (ctx.steps * batch) / tw : null;
    values.epochs = epochs;
    if (epochs !== null && epochs > DATA.maxEpochs) {
      problems.push(`${ctx.steps} steps x ${batch} windows = ${fmt(epochs, 3)} passes over ${tw} training windows`);
      if (d.stride && d.stride > 1) sets.push(`data.stride=${Math.max(1, Math.floor(d.stride / 4))}`);
    }
    if (d.validWindows === 0) problems.push('no validation windows: divergence and overfitting cannot be judged');
    if (problems.length) {
      findings.push({
        ...base,
        id: 'data-too-few-windows',
        kind: 'data-too-few-windows',
        severity,
        title: 'Too few windows for this run',
        evidence: [{ step: null, text: problems.join('; '), values }],
        cause: 'the series give too few windows of data.contextLength + 1 points for the batch and the number of steps',
        fix: {
          sets,
          note: 'more data, a smaller data.stride (more, overlapping windows), a shorter data.contextLength, or fewer steps; for validation windows each series needs 2 x (contextLength + 1) points (data.validFraction)',
        },
        experiment: null,
      });
    }
  }
  return {
    observe(_r: DiagRecord) {},
    findings: () => findings,
  };
}
