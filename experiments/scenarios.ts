/**
 * The collapse experiments (docs/DESIGN.md §7): each scenario is a failing run and its fix, run through the
 * real CLI with one config and `--set` overrides. A scenario says how to run (sets per mode), what
 * to chart, how to measure its outcome from the metrics, and how to explain it; every number in a
 * report's text comes from `outcome`, never from a constant.
 */
import type { FindingKind } from '../src/diagnose/types.ts';
import type { RunMetrics, TrainRecord } from '../src/report/metrics-reader.ts';
import {
  auxChart,
  clippedFractionChart,
  entropyChart,
  expertLoadChart,
  fmtNum,
  gradNormChart,
  lossChart,
  maxShareChart,
  scheduleChart,
  type ChartSpec,
  type RunSpec,
  type SummaryRow,
} from '../src/report/report.ts';

export type Mode = 'full' | 'fast';

export interface Variant {
  /** Run directory name under experiments/runs/<scenario>/. */
  slug: string;
  label: string;
  /** A failure arm, or the fix the failures are compared against (one per scenario at most). */
  role: 'failure' | 'fix';
  sets: readonly string[];
  /**
   * Finding kinds `node diagnose.js` must report on this arm, per mode (a fix arm: none; it must
   * also get none of the kinds its scenario's failure arms get).
   */
  findings: Record<Mode, readonly FindingKind[]>;
  /** A failure variant whose run is expected to end "diverged" (train.js exit 3, src/train/exit-codes.ts). */
  diverges?: true;
}

/** What a user cares about, measured on one run (docs: experiments/README.md, "Harm"). */
export interface HarmMetric {
  label: string;
  better: 'lower' | 'higher';
  /** NaN: the run died (worse than any number); Infinity: a target never reached. */
  of: (m: RunMetrics) => number;
  fmt?: (v: number) => string;
  /** How to print Infinity (a target never reached). */
  never?: string;
}

export interface HarmArm {
  slug: string;
  label: string;
  role: Variant['role'];
  /** One value per seed, in the scenario's seed order. */
  values: number[];
  mean: number;
  /** Max - min over the seeds. */
  spread: number;
}

export interface HarmComparison {
  slug: string;
  label: string;
  /** Seeds in which the failure arm is worse than the fix arm with the same seed. */
  worseIn: number;
  seeds: number;
  /** Per seed, how much worse than the fix with the same seed (positive: worse; Infinity: the failure never reached a target the fix reached, or died). */
  gaps: number[];
  /** Mean of gaps, and relative to the fix arm's mean. */
  gap: number;
  relGap: number;
  /** Paired t statistic of the gaps (mean / standard error); NaN with one seed, identical gaps or an infinite gap. */
  t: number;
  /** Two-sided 95% critical value of t for seeds - 1 degrees of freedom (NaN with one seed). */
  tCritical: number;
  /** The larger of the two arms' seed spreads: how far the seed alone moves an arm (context, not the test). */
  seedSpread: number;
  shown: boolean;
}

export interface HarmResult {
  seeds: number[];
  metrics: { metric: HarmMetric; arms: HarmArm[]; comparisons: HarmComparison[] }[];
}

/** Per-layer Switch loss by step, and classification accuracy by validation step. */
export interface RunExtras {
  /** step -> Switch loss per layer (index = layer). */
  switchLoss: Map<number, number[]>;
  /** valid step -> accuracy. */
  accuracy: Map<number, number>;
}

export interface RunData {
  variant: Variant;
  seed: number;
  /** The scenario's first seed: the run its charts, summary and outcome show. */
  primary: boolean;
  dir: string;
  metrics: RunMetrics;
  /** Wall time of the CLI run. */
  seconds: number;
  /** The command, as a user would type it from the repository root. */
  command: string;
  /** Set when this is another scenario's run with the same config (path under the runs root). */
  reused?: string;
}

/** A run as the report shows it: a variant's run, or a view derived from one (the NaN-filtering logger). */
export interface ShownRun extends RunSpec {
  role: Variant['role'];
  seed?: number;
  /** Finding kinds the diagnosis must report on it. */
  findings: readonly FindingKind[];
}

export interface Scenario<O> {
  name: string;
  title: string;
  /** File under experiments/configs/. */
  config: string;
  /** Overrides for every variant, per mode (steps, batch, validation). */
  sets: Record<Mode, readonly string[]>;
  /** Each variant runs once per seed (`--set seed=N`); the first seed's runs are the ones charted. */
  seeds: Record<Mode, readonly number[]>;
  variants: readonly Variant[];
  /** What a user cares about, compared failure vs fix seed by seed (measureHarm in experiments/evaluate.ts). */
  harm: readonly HarmMetric[];
  /** Markdown: what the scenario does. */
  intro: string;
  charts: (metrics: readonly RunMetrics[]) => ChartSpec[];
  /** Rows added to the standard summary. */
  summary?: (m: RunMetrics) => SummaryRow[];
  /** Measured on the first seed's runs (`runs` holds every seed; runOf picks the first). */
  outcome: (runs: readonly RunData[], mode: Mode) => O;
  /** Markdown paragraphs generated from the outcome and the harm: what happened, why, the fix. */
  explain: (o: O, mode: Mode, harm: HarmResult) => { happened: string; why: string; fix: string };
  /** The runs the report shows (default: the first seed's run of each variant); may add views derived from the metrics. */
  reportRuns?: (runs: readonly RunData[], writeDerived: (name: string, lines: readonly object[]) => string, mode: Mode) => ShownRun[];
}

// ---------------------------------------------------------------------------------------------
// Lookups over one run's metrics.

export function extrasOf(m: RunMetrics): RunExtras {
  return {
    switchLoss: new Map(m.train.map((t) => [t.step, t.routing.map((l) => l.switchLoss ?? NaN)])),
    accuracy: new Map(m.valid.filter((v) => v.accuracy !== undefined).map((v) => [v.step, v.accuracy!])),
  };
}

// ---------------------------------------------------------------------------------------------
// Small measurements over a run

const f = fmtNum;
/** The same expected findings in both modes. */
const both = (kinds: readonly FindingKind[]): Record<Mode, readonly FindingKind[]> => ({ full: kinds, fast: kinds });
const LN4 = Math.log(4);

function last<T>(xs: readonly T[]): T {
  const x = xs[xs.length - 1];
  if (x === undefined) throw new Error('no records');
  return x;
}

function first<T>(xs: readonly T[]): T {
  const x = xs[0];
  if (x === undefined) throw new Error('no records');
  return x;
}

function layerOf(r: TrainRecord, layer: number): TrainRecord['routing'][number] {
  const l = r.routing.find((x) => x.layer === layer);
  if (!l) throw new Error(`step ${r.step}: no routing for layer ${layer}`);
  return l;
}

/** Mean of `pick` over the last `frac` of the train records (noise-robust "where it ended"). */
function tailMean(m: RunMetrics, pick: (r: TrainRecord) => number, frac = 0.1): number {
  const n = Math.max(1, Math.round(m.train.length * frac));
  const xs = m.train.slice(-n).map(pick);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function lastValid(m: RunMetrics): { step: number; loss: number; lossMain: number } {
  return last(m.valid);
}

/** The first seed's run of a variant. */
function runOf(runs: readonly RunData[], slug: string): RunData {
  const r = runs.find((x) => x.variant.slug === slug && x.primary);
  if (!r) throw new Error(`no run "${slug}"`);
  return r;
}

const layersIn = (m: RunMetrics) => first(m.train).routing.map((l) => l.layer);

/** small-moe's top-k: each token makes 2 picks per layer. */
const TOP_K = 2;

/** Per layer: the share of the top-k picks the capacity limit dropped, over the steps that report it. */
function droppedFraction(m: RunMetrics): number[] {
  return layersIn(m).map((layer) => {
    let dropped = 0;
    let picks = 0;
    for (const rec of m.train) {
      const d = layerOf(rec, layer).dropped;
      if (d === undefined || !Number.isFinite(d) || rec.tokens === undefined) continue;
      dropped += d;
      picks += rec.tokens * TOP_K;
    }
    return picks ? dropped / picks : NaN;
  });
}

/**
 * One metric's verdict for a failure arm in words: both means, in how many seeds it was worse, and
 * whether that is harm (measureHarm in experiments/evaluate.ts says when).
 */
function verdict(h: HarmResult, slug: string, i: number): string {
  const m = h.metrics[i];
  const c = m?.comparisons.find((x) => x.slug === slug);
  const a = m?.arms.find((x) => x.slug === slug);
  const fix = m?.arms.find((x) => x.role === 'fix');
  if (!m || !c || !a || !fix) return '';
  const fmt = (v: number) => (v === Infinity && m.metric.never ? m.metric.never : (m.metric.fmt ?? f)(v));
  const judged = c.shown
    ? 'harm shown'
    : c.worseIn < c.seeds
      ? 'no harm shown: not worse in every seed'
      : 'no harm shown: the seeds disagree on the size of the gap';
  const of = c.seeds === 1 ? 'one seed' : `mean of ${c.seeds} seeds`;
  return `${m.metric.label} ${fmt(a.mean)} vs ${fmt(fix.mean)} for the fix (${of}), worse in ${c.worseIn} of ${c.seeds}: ${judged}`;
}
const pct = (v: number) => `${f(100 * v)}%`;
const loadStr = (load: readonly number[]) => `[${load.map((v) => v.toFixed(2)).join(', ')}]`;

// ---------------------------------------------------------------------------------------------
// Extra chart specs

/** Pooled HF/Time-MoE aux (balanced = k) next to each layer's Switch loss (balanced = 1). */
export const pooledVsPerLayerChart: ChartSpec = {
  file: 'pooled-vs-per-layer',
  title: 'Pooled aux vs per-layer Switch loss',
  yLabel: 'balancing loss (unweighted)',
  yMin: 0,
  series: (m) => {
    const sw = extrasOf(m).switchLoss;
    const layers = layersIn(m);
    return [
      { name: 'pooled aux (all layers)', points: m.train.map((r) => [r.step, r.aux] as const) },
      ...layers.map((layer) => ({
        name: `Switch loss, layer ${layer}`,
        dashed: true,
        points: m.train.flatMap((r) => (sw.get(r.step)?.[layer] !== undefined ? [[r.step, sw.get(r.step)![layer]!] as const] : [])),
      })),
    ];
  },
  references: () => [
    { y: 2, label: 'pooled balanced = k = 2' },
    { y: 1, label: 'Switch balanced = 1' },
  ],
};

export const accuracyChart: ChartSpec = {
  file: 'valid-accuracy',
  title: 'Validation accuracy',
  yLabel: 'accuracy',
  yMin: 0,
  series: (m) => [{ name: 'valid accuracy', points: [...extrasOf(m).accuracy].map(([s, a]) => [s, a] as const) }],
};

export const mainLossChart: ChartSpec = {
  file: 'main-loss',
  title: 'Main loss (no aux term)',
  yLabel: 'loss',
  series: (m) => [
    { name: 'train main loss', points: m.train.map((r) => [r.step, r.lossMain] as const) },
    { name: 'valid main loss', points: m.valid.map((v) => [v.step, v.lossMain] as const) },
  ],
};

const routingCharts = (metrics: readonly RunMetrics[]): ChartSpec[] => {
  const layers = [...new Set(metrics.flatMap((m) => (m.train.length ? layersIn(m) : [])))].sort((a, b) => a - b);
  return [maxShareChart, entropyChart, ...layers.map(expertLoadChart)];
};

function switchRows(m: RunMetrics): SummaryRow[] {
  const sw = extrasOf(m).switchLoss;
  const lastRec = m.train[m.train.length - 1];
  const per = lastRec ? sw.get(lastRec.step) : undefined;
  return per ? per.map((v, layer) => [`Switch loss, layer ${layer} (last; balanced 1)`, f(v)] as const) : [];
}

/** What a forecasting user reads: where the validation loss ends, and how fast it got there. */
const FORECAST_HARM: readonly HarmMetric[] = [
  { label: 'validation main loss (Huber) at the end', better: 'lower', of: (m) => lastValid(m).lossMain },
  {
    label: 'validation main loss, mean over the validations after step 0 (how fast it fell)',
    better: 'lower',
    of: (m) => {
      const vs = m.valid.filter((v) => v.step > 0);
      return vs.length ? vs.reduce((a, v) => a + v.lossMain, 0) / vs.length : NaN;
    },
  },
];

// ---------------------------------------------------------------------------------------------
// 1. Router init

export interface RouterInitOutcome {
  steps: number;
  runs: Record<
    'bad' | 'good',
    {
      label: string;
      entropyFirst: number[];
      entropyLast: number[];
      maxShareFirst: number[];
      maxShareLast: number[];
      layer0CollapsedFraction: number;
      layer0LowEntropyFraction: number;
      droppedFraction: number[];
      validLast: number;
    }
  >;
}

/** Expert capacity of the routing scenarios: Switch / GShard's 1.25 (experiments/README.md, "Harm"). */
const CAPACITY = 1.25;
/** Steps over which the 0.02 aux factor ramps from 0 (aux-loss's fix, and router-init's both arms). */
const AUX_WARMUP: Record<Mode, number> = { full: 50, fast: 15 };

/**
 * router-init and aux-loss run on one base, where routing carries the FFN: no shared expert (the
 * routed experts are the whole FFN) and a capacity factor (tokens past an expert's capacity skip
 * it). With small-moe's shared expert and dropless routing neither failure cost measurable
 * validation loss at the lengths we could afford (experiments/README.md, "Harm").
 */
const ROUTING_SETS: Record<Mode, readonly string[]> = {
  full: [
    'model.sharedIntermediate=0',
    `model.capacityFactor=${CAPACITY}`,
    'schedule.steps=150',
    'schedule.warmupSteps=15',
    'logging.validEvery=50',
    `loss.auxWarmupSteps=${AUX_WARMUP.full}`,
  ],
  fast: [
    'model.sharedIntermediate=0',
    `model.capacityFactor=${CAPACITY}`,
    'schedule.steps=20',
    'schedule.warmupSteps=3',
    'schedule.microBatch=8',
    'logging.validEvery=0',
    'logging.validBatches=2',
    `loss.auxWarmupSteps=${AUX_WARMUP.fast}`,
  ],
};

/**
 * Seed of the routing scenarios. Seed 1 was picked from a 3-step scan of seeds 0-3 with router std
 * 1.0 because its two layers collapse onto different experts from step 2 on (seed 0 shows it only
 * late in the run), so pooled-vs-per-layer can read the router-init failure run.
 */
const ROUTING_SEED = 1;
/** router-init and aux-loss share their runs' seeds (and so their fix arm's runs). */
const routerSeeds: Record<Mode, readonly number[]> = { full: [ROUTING_SEED, 2, 3], fast: [ROUTING_SEED] };

/** Entropy (nats) below which a layer's router is called saturated: about a third of ln 4. */
const LOW_ENTROPY = 0.5;

export const routerInit: Scenario<RouterInitOutcome> = {
  name: 'router-init',
  title: 'Router init: std 1.0 fixes the top-2 picks from step 0',
  config: 'forecast.json',
  sets: ROUTING_SETS,
  seeds: routerSeeds,
  variants: [
    {
      slug: 'router-std-1.0',
      label: 'router std 1.0 (failure)',
      role: 'failure',
      sets: ['model.init.routerStd=1.0', 'loss.auxFactor=0.02'],
      findings: both(['router-saturated']),
    },
    // The same config as aux-loss's warmed arm: one run serves both (the runner reuses it).
    { slug: 'router-std-0.006', label: 'router std 0.006 (fix)', role: 'fix', sets: ['model.init.routerStd=0.006', 'loss.auxFactor=0.02'], findings: both([]) },
  ],
  harm: FORECAST_HARM,
  intro: `small-moe (d = 64, 2 layers, 4 experts, top-2) on sensor-temperature, without its shared expert (the routed experts are the whole FFN) and with expert capacity ${CAPACITY}: an expert takes at most ${CAPACITY}x its balanced share of a batch's top-2 picks, in token order, and the picks past that skip it (Switch / GShard; Time-MoE and this engine's default are dropless). Pooled aux loss 0.02 ramped over ${AUX_WARMUP.full} steps (${AUX_WARMUP.fast} in the fast version); seeds ${routerSeeds.full.join(', ')}, the same for both arms; only the router weights' init std differs (docs/DESIGN.md §7.1). Collapse shows as router entropy far below ln 4 = ${f(LN4)} and a largest expert share near 0.5 (= one expert among the 2 picks of every token). With the shared expert and dropless routing (small-moe as it ships) the trial runs found no measurable validation-loss cost, so this scenario runs where an overloaded expert has a price (experiments/README.md, "Harm").`,
  charts: (metrics) => [lossChart, ...routingCharts(metrics), auxChart, gradNormChart],
  outcome: (runs) => {
    const one = (slug: string) => {
      const r = runOf(runs, slug);
      const t = r.metrics.train;
      const layers = layersIn(r.metrics);
      const by = (rec: TrainRecord, k: 'entropy' | 'maxShare') => layers.map((l) => layerOf(rec, l)[k]);
      return {
        label: r.variant.label,
        entropyFirst: by(first(t), 'entropy'),
        entropyLast: by(last(t), 'entropy'),
        maxShareFirst: by(first(t), 'maxShare'),
        maxShareLast: by(last(t), 'maxShare'),
        layer0CollapsedFraction: t.filter((rec) => layerOf(rec, 0).maxShare >= 0.45).length / t.length,
        layer0LowEntropyFraction: t.filter((rec) => layerOf(rec, 0).entropy < LOW_ENTROPY).length / t.length,
        droppedFraction: droppedFraction(r.metrics),
        validLast: lastValid(r.metrics).lossMain,
      };
    };
    const bad = one('router-std-1.0');
    return { steps: last(runOf(runs, 'router-std-1.0').metrics.train).step, runs: { bad, good: one('router-std-0.006') } };
  },
  explain: (o, mode, h) => {
    const { bad, good } = o.runs;
    const ent = (xs: number[]) => xs.map((v, l) => `layer ${l} ${f(v)}`).join(', ');
    const drop = (xs: number[]) => xs.map((v, l) => `layer ${l} ${pct(v)}`).join(', ');
    return {
      happened: `Seed ${routerSeeds[mode][0]}: with router std 1.0 the router entropy at step 1 is ${ent(bad.entropyFirst)} nats (uniform ln 4 = ${f(LN4)}), layer 0's entropy stays below ${LOW_ENTROPY} nats in ${pct(bad.layer0LowEntropyFraction)} of the ${o.steps} steps, and its largest expert share is ≥ 0.45 in ${pct(bad.layer0CollapsedFraction)} of them (step 1: ${f(bad.maxShareFirst[0])}, step ${o.steps}: ${f(bad.maxShareLast[0])}). With std 0.006 the entropy starts at ${ent(good.entropyFirst)} and ends at ${ent(good.entropyLast)}; layer 0's largest share goes from ${f(good.maxShareFirst[0])} to ${f(good.maxShareLast[0])} (balanced 0.25). The capacity limit drops ${drop(bad.droppedFraction)} of the top-2 picks over the run with std 1.0, against ${drop(good.droppedFraction)} with std 0.006. Validation main loss at the end: ${f(bad.validLast)} vs ${f(good.validLast)}. Over all seeds: ${verdict(h, 'router-std-1.0', 0)}; ${verdict(h, 'router-std-1.0', 1)}.`,
      why: 'Router logits are hidden · W with |hidden| ≈ √d after RMSNorm, so std 1.0 gives logits of size ≈ 8 at d = 64: the softmax is nearly one-hot from the first step and the top-2 choice is decided by the random init, not by the data. The aux loss pushes only through the router probabilities, whose gradient vanishes when they are saturated, so the picks stay where the init put them. With std 0.006 the probabilities start near-uniform (entropy ≈ ln 4), every expert gets gradient, and the aux loss can move the picks. What that costs depends on the setting: an expert that is in every token\'s top 2 overflows its capacity, and the picks past it skip the expert; with no shared expert they get no FFN in that layer for that step. Without a capacity limit a fixed random routing is all the saturated router loses, and on this small model that did not show in the validation loss (experiments/README.md, "Harm").',
      fix: `Initialise the router with a small std (\`model.init.routerStd\` 1e-3..1e-2; the default is 0.006) and bias 0. Here that keeps the entropy at ${ent(good.entropyLast)} nats after ${o.steps} steps.`,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// 2. Aux loss strength and warm-up

type AuxSlug = 'aux-off' | 'aux-strong' | 'aux-warmed';

export interface AuxLossOutcome {
  steps: number;
  strongFactor: number;
  runs: Record<
    AuxSlug,
    {
      label: string;
      maxShareLast: number[];
      maxShareTail: number[];
      entropyLast: number[];
      mainTail: number;
      validMainLast: number;
      validMainMid: number | undefined;
      midStep: number | undefined;
      clippedFirst: number;
      clippedMeanFirst20: number;
      droppedFraction: number[];
    }
  >;
}

const STRONG_AUX = 1.0;

export const auxLoss: Scenario<AuxLossOutcome> = {
  name: 'aux-loss',
  title: 'Aux loss: off vs strong from step 0 vs warmed up',
  config: 'forecast.json',
  sets: {
    full: ROUTING_SETS.full,
    // The full version's seed 3, the one seed whose aux-off collapse (top-2 share around 0.92) stays
    // above 0.9 for the 50 clean steps the diagnosis asks for (from step 63); a 100-step trial
    // hovered at 0.87-0.97 and got no finding (experiments/README.md, "What the diagnosis says").
    fast: ROUTING_SETS.full,
  },
  seeds: { full: routerSeeds.full, fast: [3] },
  variants: [
    { slug: 'aux-off', label: 'aux off (failure)', role: 'failure', sets: ['loss.auxFactor=0'], findings: both(['routing-collapse']) },
    {
      slug: 'aux-strong',
      label: `aux ${STRONG_AUX} from step 0 (failure)`,
      role: 'failure',
      sets: [`loss.auxFactor=${STRONG_AUX}`, 'loss.auxWarmupSteps=0'],
      findings: both(['aux-dominates']),
    },
    // The same config as router-init's fix arm: one run serves both (the runner reuses it).
    { slug: 'aux-warmed', label: 'aux 0.02 warmed up (fix)', role: 'fix', sets: ['loss.auxFactor=0.02'], findings: both([]) },
  ],
  harm: FORECAST_HARM,
  intro: `small-moe on sensor-temperature with the router std 0.006 default and the pooled HF/Time-MoE aux loss (balanced = k = 2), on router-init's base: no shared expert (the routed experts are the whole FFN) and expert capacity ${CAPACITY} (picks past an expert's capacity skip it); seeds ${routerSeeds.full.join(', ')}, the same for every arm. Three settings of the aux factor: 0 (off), ${STRONG_AUX} from step 0, and 0.02 ramped from 0 over the first ${AUX_WARMUP.full} steps (docs/DESIGN.md §7.2); the last is also router-init's fix arm, the same runs. The fast version is seed 3 of this one (the tests check its diagnosis). The main loss (Huber, without the aux term) is what the model is for; the aux term is a constraint on routing. With small-moe's shared expert and dropless routing the three ended close together in validation main loss in the trial runs (experiments/README.md, "Harm").`,
  charts: (metrics) => [mainLossChart, ...routingCharts(metrics), auxChart, scheduleChart, gradNormChart, clippedFractionChart],
  outcome: (runs) => {
    const one = (slug: AuxSlug) => {
      const r = runOf(runs, slug);
      const m = r.metrics;
      const layers = layersIn(m);
      const mid = m.valid.length > 2 ? m.valid[Math.floor(m.valid.length / 2)] : undefined;
      const early = m.train.slice(0, 20);
      return {
        label: r.variant.label,
        maxShareLast: layers.map((l) => layerOf(last(m.train), l).maxShare),
        maxShareTail: layers.map((l) => tailMean(m, (rec) => layerOf(rec, l).maxShare)),
        entropyLast: layers.map((l) => layerOf(last(m.train), l).entropy),
        mainTail: tailMean(m, (rec) => rec.lossMain),
        validMainLast: lastValid(m).lossMain,
        validMainMid: mid?.lossMain,
        midStep: mid?.step,
        clippedFirst: first(m.train).clippedFraction,
        clippedMeanFirst20: early.reduce((a, rec) => a + rec.clippedFraction, 0) / early.length,
        droppedFraction: droppedFraction(m),
      };
    };
    return {
      steps: last(runOf(runs, 'aux-off').metrics.train).step,
      strongFactor: STRONG_AUX,
      runs: { 'aux-off': one('aux-off'), 'aux-strong': one('aux-strong'), 'aux-warmed': one('aux-warmed') },
    };
  },
  explain: (o, mode, h) => {
    const { 'aux-off': off, 'aux-strong': strong, 'aux-warmed': warm } = o.runs;
    const drop = (xs: number[]) => xs.map((v, l) => `layer ${l} ${pct(v)}`).join(', ');
    const shares = (xs: number[]) => xs.map((v, l) => `layer ${l} ${f(v)}`).join(', ');
    const ranked = (['aux-off', 'aux-strong', 'aux-warmed'] as const)
      .map((k) => [k, o.runs[k]] as const)
      .sort((a, b) => a[1].validMainLast - b[1].validMainLast);
    const mid =
      warm.midStep !== undefined
        ? ` At step ${warm.midStep} the validation main loss reads ${f(off.validMainMid)} (off), ${f(strong.validMainMid)} (strong), ${f(warm.validMainMid)} (warmed).`
        : '';
    return {
      happened: `Seed ${auxLoss.seeds[mode][0]}, after ${o.steps} steps (largest expert share averaged over the last 10% of steps; balanced 0.25): aux off ${shares(off.maxShareTail)}; aux ${o.strongFactor} from step 0 ${shares(strong.maxShareTail)}; warmed 0.02 ${shares(warm.maxShareTail)}. Validation main loss (Huber, no aux term) at the end: off ${f(off.validMainLast)}, strong ${f(strong.validMainLast)}, warmed ${f(warm.validMainLast)} — best: ${ranked[0]![1].label}.${mid} Clipping at step 1 removes ${pct(strong.clippedFirst)} of the gradient with the strong aux vs ${pct(warm.clippedFirst)} warmed (mean over the first 20 steps: ${pct(strong.clippedMeanFirst20)} vs ${pct(warm.clippedMeanFirst20)}). The capacity limit drops ${drop(off.droppedFraction)} of the top-2 picks over the run with the aux off, ${drop(strong.droppedFraction)} with the strong aux, ${drop(warm.droppedFraction)} warmed. Over all seeds, aux off: ${verdict(h, 'aux-off', 0)}; ${verdict(h, 'aux-off', 1)}. Aux ${o.strongFactor} from step 0: ${verdict(h, 'aux-strong', 0)}; ${verdict(h, 'aux-strong', 1)}.${Math.max(...warm.maxShareTail) > 0.4 ? ` Not reproduced as expected: within these ${o.steps} steps the warmed 0.02 factor did not balance the loads (largest share ${shares(warm.maxShareTail)}); at factor 0.02 the aux gradient is small next to the main loss's, so balancing would take longer than this run.` : ''}`,
      why: `Without an aux loss nothing pushes tokens away from the experts the near-uniform router happens to prefer, so a layer can keep two experts for every token: an MoE with 4 experts then trains like a dense FFN of 2, and under a capacity limit those two overflow and drop the picks past their capacity. A strong aux loss from step 0 balances at once, but its gradient is part of the global norm: with clip 1.0 it takes a share of the clipped update that the main loss would have used, and it pulls the router towards uniform before the experts have specialised. Warming the factor up lets the main loss shape the experts first; balancing then proceeds at the pace of the small target factor.`,
      fix: `Keep the aux factor small (0.02, Time-MoE) and ramp it from 0 (\`loss.auxWarmupSteps\`; 1k-10k steps at full scale, ${AUX_WARMUP.full} here). Judge it by the main loss, not by the total loss, which includes aux × factor.`,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// 3. Classification head init

export interface HeadInitOutcome {
  lnClasses: number;
  runs: Record<
    'bad' | 'good',
    {
      label: string;
      lossFirst: number;
      validFirst: number;
      gradNormFirst: number;
      clippedFirst: number;
      clippedMean: number;
      lossTail: number;
      validLast: number;
      accuracyLast: number | undefined;
      stepBelowLn: number | undefined;
      steps: number;
    }
  >;
}

const CLASSES = 280;

export const headInit: Scenario<HeadInitOutcome> = {
  name: 'head-init',
  title: 'Classification head init: std 1.0 with 280 classes',
  config: 'classify.json',
  sets: {
    full: ['schedule.steps=150', 'schedule.warmupSteps=15', 'logging.validEvery=50'],
    fast: ['schedule.steps=6', 'schedule.warmupSteps=1', 'schedule.microBatch=8', 'logging.validEvery=0', 'logging.validBatches=2'],
  },
  seeds: { full: [0, 1, 2], fast: [0] },
  variants: [
    { slug: 'head-std-1.0', label: 'head std 1.0 (failure)', role: 'failure', sets: ['model.init.headStd=1.0'], findings: both(['bad-start', 'clip-limited']) },
    { slug: 'head-std-0.02', label: 'head std 0.02 (fix)', role: 'fix', sets: ['model.init.headStd=0.02'], findings: both([]) },
  ],
  harm: [
    { label: 'validation cross-entropy at the end', better: 'lower', of: (m) => lastValid(m).lossMain },
    {
      label: `steps until the train cross-entropy first falls below ln ${CLASSES} (a uniform guess)`,
      better: 'lower',
      of: (m) => m.train.find((rec) => rec.lossMain < Math.log(CLASSES))?.step ?? Infinity,
      never: 'never',
    },
  ],
  intro: `small-moe as a classifier (mean-pool → Linear(64 → ${CLASSES})) on synthetic-classes, ${CLASSES} classes × 2 series, context 32, clip 1.0; the same seed. Only the head's init std differs (docs/DESIGN.md §7.3). A head that knows nothing should start at the cross-entropy of a uniform guess, ln ${CLASSES} = ${f(Math.log(CLASSES))}.`,
  charts: () => [lossChart, gradNormChart, clippedFractionChart, accuracyChart],
  summary: (m) => {
    const acc = [...extrasOf(m).accuracy];
    const a = acc[acc.length - 1];
    return a ? [[`valid accuracy, step ${a[0]} (last; chance ${f(1 / CLASSES)})`, f(a[1])]] : [];
  },
  outcome: (runs) => {
    const lnC = Math.log(CLASSES);
    const one = (slug: string) => {
      const r = runOf(runs, slug);
      const m = r.metrics;
      const acc = [...extrasOf(r.metrics).accuracy];
      return {
        label: r.variant.label,
        lossFirst: first(m.train).loss,
        validFirst: first(m.valid).loss,
        gradNormFirst: first(m.train).gradNorm,
        clippedFirst: first(m.train).clippedFraction,
        clippedMean: m.train.reduce((a, rec) => a + rec.clippedFraction, 0) / m.train.length,
        lossTail: tailMean(m, (rec) => rec.lossMain),
        validLast: lastValid(m).lossMain,
        accuracyLast: acc.length ? acc[acc.length - 1]![1] : undefined,
        stepBelowLn: m.train.find((rec) => rec.lossMain < lnC)?.step,
        steps: last(m.train).step,
      };
    };
    return { lnClasses: lnC, runs: { bad: one('head-std-1.0'), good: one('head-std-0.02') } };
  },
  explain: (o, mode, h) => {
    const { bad, good } = o.runs;
    const below = (r: typeof bad) => (r.stepBelowLn !== undefined ? `step ${r.stepBelowLn}` : `never in ${r.steps} steps`);
    const seed = ` (seed ${headInit.seeds[mode][0]})`;
    const acc =
      bad.accuracyLast !== undefined && good.accuracyLast !== undefined
        ? ` Validation accuracy: ${f(bad.accuracyLast)} vs ${f(good.accuracyLast)} (chance ${f(1 / CLASSES)}).`
        : '';
    return {
      happened: `Cross-entropy at step 1${seed}: ${f(bad.lossFirst)} with head std 1.0 vs ${f(good.lossFirst)} with std 0.02 (ln ${CLASSES} = ${f(o.lnClasses)}). Pre-clip gradient norm at step 1: ${f(bad.gradNormFirst)} vs ${f(good.gradNormFirst)}; clipping to 1.0 removes ${pct(bad.clippedFirst)} vs ${pct(good.clippedFirst)} of the gradient (mean over all steps: ${pct(bad.clippedMean)} vs ${pct(good.clippedMean)}). The train loss first drops below ln ${CLASSES}: ${below(bad)} vs ${below(good)}. After ${bad.steps} steps: train cross-entropy (last 10% of steps) ${f(bad.lossTail)} vs ${f(good.lossTail)}, validation ${f(bad.validLast)} vs ${f(good.validLast)}.${acc}${good.lossTail > 0.98 * o.lnClasses ? ` The fix itself ends within 2% of ln ${CLASSES}: in ${good.steps} steps on this task it learns little either, and the failure's cost is the steps it spends getting back to a uniform guess.` : ''} Over all seeds: ${verdict(h, 'head-std-1.0', 0)}; ${verdict(h, 'head-std-1.0', 1)}.`,
      why: `With std 1.0 each logit is a sum of 64 terms of size ≈ 1, so the logits have std ≈ √64 = 8 across ${CLASSES} classes: the softmax is confidently wrong and the cross-entropy starts far above ln ${CLASSES}. The gradient of that loss is huge, global-norm clipping scales every parameter's update down by the same factor, and most of the early steps are spent shrinking the head back to where std 0.02 starts.`,
      fix: `Initialise the head with std 0.02 (\`model.init.headStd\`; the default) so the initial loss is ln ${CLASSES}, and watch the pre-clip norm and clipped fraction, which the trainer logs every step.`,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// 4. A transient NaN

export interface NanOutcome {
  injectStep: number;
  steps: number;
  unguarded: {
    firstNonFiniteLoss: number | undefined;
    nonFiniteSteps: number;
    stepsAfterInject: number;
    lastLoss: number;
    validLast: number;
    nonFiniteGradSteps: number;
  };
  naive: { zeroLossSteps: number; nanGradSteps: number };
  guarded: {
    skipped: number[];
    firstBad: string | undefined;
    firstBadLayer: number | undefined;
    firstBadStep: number | undefined;
    nonFiniteLoggedLoss: number;
    lastLoss: number;
    validLast: number;
    lossBefore: number;
  };
}

const nanInject = (step: number) => `stability.injectNan={"step":${step},"layer":1,"site":"router_logits"}`;
const NAN_STEP: Record<Mode, number> = { full: 20, fast: 3 };

/** A logger that filters non-finite losses to 0.0 (and passes the grad norm through): the view docs/DESIGN.md §7.4 warns about. */
export function naiveLoggerView(m: RunMetrics): object[] {
  const zero = (v: number) => (Number.isFinite(v) ? v : 0);
  return [
    ...m.valid.map((v) => ({ kind: 'valid', step: v.step, loss: zero(v.loss), lossMain: zero(v.lossMain), horizons: [] })),
    ...m.train.map((r) => ({
      ...r,
      loss: zero(r.loss),
      lossMain: zero(r.lossMain),
      aux: zero(r.aux),
      gradNorm: r.gradNorm,
      nonFinite: [],
      routing: [],
      skipped: false,
    })),
  ].map((o) => JSON.parse(JSON.stringify(o, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))) as object);
}

export const nanScenario: Scenario<NanOutcome> = {
  name: 'nan',
  title: 'A transient NaN in one layer: unguarded vs guarded',
  config: 'forecast.json',
  sets: {
    full: ['schedule.steps=60', 'schedule.warmupSteps=6', 'logging.validEvery=30', nanInject(NAN_STEP.full)],
    fast: ['schedule.steps=6', 'schedule.warmupSteps=1', 'schedule.microBatch=8', 'logging.validEvery=0', 'logging.validBatches=2', nanInject(NAN_STEP.fast)],
  },
  // One seed: what the NaN does to the weights does not depend on the draw (the fast test checks it exactly).
  seeds: { full: [0], fast: [0] },
  variants: [
    {
      slug: 'guards-off',
      label: 'guards off (failure)',
      role: 'failure',
      sets: ['stability.guards=false'],
      findings: both(['non-finite', 'divergence']),
      diverges: true,
    },
    { slug: 'guards-on', label: 'guards on (fix)', role: 'fix', sets: ['stability.guards=true'], findings: both([]) },
  ],
  harm: [
    { label: 'validation loss at the end', better: 'lower', of: (m) => lastValid(m).loss },
    { label: 'train steps with a finite loss', better: 'higher', of: (m) => m.train.filter((r) => Number.isFinite(r.loss)).length },
  ],
  intro:
    'small-moe on sensor-temperature; at one step NaN is written into layer 1\'s router logits (`stability.injectNan`, like an f16 overflow in one layer), once, then the data is clean again (docs/DESIGN.md §7.4). Three views: the unguarded run as a logger that filters NaN to 0.0 would print it ("guards off, NaN-filtering logger", computed here from the unguarded metrics), the unguarded run\'s true metrics, and the guarded run.',
  charts: () => [lossChart, gradNormChart],
  reportRuns: (runs, writeDerived, mode) => {
    const off = runOf(runs, 'guards-off');
    const on = runOf(runs, 'guards-on');
    return [
      {
        label: 'guards off, NaN-filtering logger',
        dir: writeDerived('naive-logger-view.jsonl', naiveLoggerView(off.metrics)),
        role: 'failure',
        // What the second report saw: loss 0 next to a NaN grad norm, and the NaN in the weights behind it.
        findings: ['nan-logged-as-zero', 'non-finite'],
      },
      { label: 'guards off, true metrics', dir: off.dir, role: 'failure', seed: off.seed, findings: off.variant.findings[mode] },
      { label: on.variant.label, dir: on.dir, role: 'fix', seed: on.seed, findings: [] },
    ];
  },
  outcome: (runs, mode) => {
    const off = runOf(runs, 'guards-off').metrics;
    const on = runOf(runs, 'guards-on').metrics;
    const inject = NAN_STEP[mode];
    const bad = off.train.filter((r) => !Number.isFinite(r.loss));
    const badRec = on.train.find((r) => r.nonFinite.length > 0);
    const before = on.train.find((r) => r.step === inject - 1);
    return {
      injectStep: inject,
      steps: last(off.train).step,
      unguarded: {
        firstNonFiniteLoss: bad[0]?.step,
        nonFiniteSteps: bad.length,
        stepsAfterInject: off.train.filter((r) => r.step >= inject).length,
        lastLoss: last(off.train).loss,
        validLast: lastValid(off).loss,
        nonFiniteGradSteps: off.train.filter((r) => !Number.isFinite(r.gradNorm)).length,
      },
      naive: {
        zeroLossSteps: off.train.filter((r) => !Number.isFinite(r.loss)).length,
        nanGradSteps: off.train.filter((r) => Number.isNaN(r.gradNorm)).length,
      },
      guarded: {
        skipped: on.train.filter((r) => r.skipped).map((r) => r.step),
        firstBad: badRec?.nonFinite[0]?.name,
        firstBadLayer: badRec?.nonFinite[0]?.layer,
        firstBadStep: badRec?.step,
        nonFiniteLoggedLoss: on.train.filter((r) => !r.skipped && !Number.isFinite(r.loss)).length,
        lastLoss: last(on.train).loss,
        validLast: lastValid(on).loss,
        lossBefore: before?.loss ?? NaN,
      },
    };
  },
  explain: (o, _mode, h) => {
    const u = o.unguarded;
    const g = o.guarded;
    return {
      happened: `NaN enters layer 1's router logits at step ${o.injectStep} only. Unguarded, the loss is non-finite from step ${u.firstNonFiniteLoss ?? '—'} on: ${u.nonFiniteSteps} of the ${u.stepsAfterInject} steps from step ${o.injectStep} to ${o.steps}, and the final validation loss is ${f(u.validLast)} — the update applied NaN to the weights, so every later step is NaN although the data is clean. A logger that filters non-finite losses prints loss 0.0 for those ${o.naive.zeroLossSteps} steps, next to a NaN grad norm in ${o.naive.nanGradSteps} of them: it looks converged. Guarded, step${g.skipped.length === 1 ? '' : 's'} ${g.skipped.join(', ') || '—'} ${g.skipped.length === 1 ? 'is' : 'are'} skipped (weights and optimizer state unchanged), the first bad tensor is named as \`${g.firstBad ?? '—'}\` (layer ${g.firstBadLayer ?? '—'}) at step ${g.firstBadStep ?? '—'}, and training continues: last train loss ${f(g.lastLoss)}, final validation loss ${f(g.validLast)}. Unguarded against guarded: ${verdict(h, 'guards-off', 0)}.`,
      why: 'One NaN in the router logits makes the softmax NaN for those tokens; the backward pass turns it into NaN gradients for every parameter upstream, and AdamW writes NaN into the weights and both moment buffers. From then on every forward pass is NaN. Filtering NaN out of the logged loss hides exactly this.',
      fix: 'Per-layer isfinite guards on forward outputs, router logits and gradients (`stability.guards`, on by default): the step is skipped, the first bad tensor is named with its finite min/max/mean, and the run stops with the last good weights saved after `stability.maxConsecutiveBadSteps` bad steps in a row. Never log NaN as 0.',
    };
  },
};

// ---------------------------------------------------------------------------------------------
// 5. Pooled vs per-layer balancing loss

export interface PooledOutcome {
  seed: number;
  steps: number;
  k: number;
  /** Steps where the pooled aux is within 15% of k while some layer's Switch loss exceeds 1.5. */
  hiddenSteps: number[];
  last: { step: number; aux: number; switchLoss: number[]; load: number[][]; maxShare: number[] };
  /** The step with the largest per-layer Switch loss among the hidden steps (or the last step). */
  worst: { step: number; aux: number; switchLoss: number[]; load: number[][] };
}

export const pooledVsPerLayer: Scenario<PooledOutcome> = {
  name: 'pooled-vs-per-layer',
  title: 'Pooled aux loss hides per-layer collapse',
  config: 'forecast.json',
  // small-moe as it ships (shared expert, dropless), aux 0.02 from step 0: the run the seed was picked for.
  sets: {
    full: ['schedule.steps=150', 'schedule.warmupSteps=15', 'logging.validEvery=50'],
    fast: ['schedule.steps=20', 'schedule.warmupSteps=3', 'schedule.microBatch=8', 'logging.validEvery=0', 'logging.validBatches=2'],
  },
  seeds: { full: [ROUTING_SEED], fast: [ROUTING_SEED] },
  variants: [
    {
      slug: 'router-std-1.0',
      label: 'router std 1.0, pooled aux 0.02',
      role: 'failure',
      sets: ['model.init.routerStd=1.0', 'loss.auxFactor=0.02', 'loss.auxConvention=pooled'],
      findings: both(['pooled-aux-hides-imbalance']),
    },
  ],
  // A reading of one run, with no fix arm: its harm is router-init's.
  harm: [],
  intro: `A router std 1.0 run of small-moe as it ships (shared expert, dropless routing; pooled aux 0.02 from step 0, seed ${ROUTING_SEED}), read two ways: router-init's failure arm before that scenario moved to a base where the failure costs validation loss. The complementary collapse depends on the seed: seed ${ROUTING_SEED} was picked from a 3-step scan of seeds 0-3 because its layers settle on different experts from step 2 (with seed 0 it appeared only around step 150). The HF / Time-MoE aux loss pools the router outputs of all layers before computing f·P, so its balanced value is k = 2; the Switch loss computed per layer has balanced value 1 (docs/DESIGN.md §6). When the layers collapse onto different experts the pooled counts look even although each layer uses two experts.`,
  charts: (metrics) => [pooledVsPerLayerChart, ...routingCharts(metrics)],
  summary: switchRows,
  outcome: (runs) => {
    const r = runs[0]!;
    const m = r.metrics;
    const k = 2;
    const layers = layersIn(m);
    const switchByStep = extrasOf(r.metrics).switchLoss;
    const sw = (step: number) => switchByStep.get(step) ?? [];
    const hidden = m.train.filter((rec) => Math.abs(rec.aux - k) / k <= 0.15 && Math.max(...sw(rec.step)) > 1.5);
    const at = (rec: TrainRecord) => ({ step: rec.step, aux: rec.aux, switchLoss: sw(rec.step), load: layers.map((l) => layerOf(rec, l).load) });
    const worstRec = hidden.length ? hidden.reduce((a, b) => (Math.max(...sw(b.step)) > Math.max(...sw(a.step)) ? b : a)) : last(m.train);
    const lastRec = last(m.train);
    return {
      seed: ROUTING_SEED,
      steps: lastRec.step,
      k,
      hiddenSteps: hidden.map((rec) => rec.step),
      last: { ...at(lastRec), maxShare: layers.map((l) => layerOf(lastRec, l).maxShare) },
      worst: at(worstRec),
    };
  },
  explain: (o) => {
    const per = (xs: number[]) => xs.map((v, l) => `layer ${l} ${f(v)}`).join(', ');
    const loads = (ls: number[][]) => ls.map((v, l) => `layer ${l} ${loadStr(v)}`).join(', ');
    return {
      happened: `Seed ${o.seed}. At step ${o.last.step} the pooled aux reads ${f(o.last.aux)} (balanced k = ${o.k}) while the per-layer Switch losses read ${per(o.last.switchLoss)} (balanced 1), with expert loads ${loads(o.last.load)}. In ${o.hiddenSteps.length} of ${o.steps} steps the pooled aux is within 15% of k while some layer's Switch loss is above 1.5; the widest gap is at step ${o.worst.step}: pooled ${f(o.worst.aux)}, Switch ${per(o.worst.switchLoss)}, loads ${loads(o.worst.load)}.`,
      why: "Pooling concatenates the tokens of all layers: the fraction of picks per expert index is averaged over layers, so one layer on experts {0, 1} and another on {2, 3} add up to an even count. The pooled loss also sees collapse only through f·P, and when the layers' probabilities concentrate on different experts the products stay near their balanced value. Expert i in layer 0 and expert i in layer 1 are different weights; pooling them is a bookkeeping artefact.",
      fix: 'Report per-layer statistics (the trainer logs each layer\'s load, max share, entropy and Switch loss every step) and, if balancing matters per layer, use `loss.auxConvention: "switch"` (per-layer Switch loss, mean over layers).',
    };
  },
};

/** Every scenario, in the order `all` runs them. */
// Scenario<O> is invariant in O; the runner only ever feeds a scenario's own outcome back to it,
// so erasing O here is sound.
export const SCENARIOS = [routerInit, auxLoss, headInit, nanScenario, pooledVsPerLayer] as unknown as readonly Scenario<unknown>[];
