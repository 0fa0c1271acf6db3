/**
 * A forecast run: model source -> data -> forecasts of every series' next H points (from its last
 * T points), and with `evaluate` the same on every held-out window of the training split, beside
 * the baselines on the same windows. Everything that can be refused is checked before the device
 * is opened (the output folder too: never the run being read or inside it, except the run's own
 * `forecast/`, and writable), and the output folder is written in one atomic step at the end, only
 * when every forecast is finite.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { getRuntime } from '../kernels/node/dawn.ts';
import { TimeMoeModel } from '../model/time-moe.ts';
import {
  DataError,
  effectiveStride,
  formatReport,
  loadData,
  meanStd,
  splitSeries,
  windowStarts,
  type CleanSeries,
  type DataConfig,
} from '../train/data/index.ts';
import { describeSource, loadSourceWeights, readSourceTensors, resolveModelSource, sourceRoot, type ModelSource } from '../train/interop/model-source.ts';
import { replaceFolderAtomic, writeFiles } from '../util/atomic-write.ts';
import { checkApart, checkWritable, shown } from '../util/output-path.ts';
import { BASELINES, baselineForecast, detectSeason, type BaselineName } from './baselines.ts';
import { denormalise, forecastDataConfig, normalise, windowStats, type DataFlags } from './data.ts';
import { ForecastError, NonFiniteForecastError } from './errors.ts';
import { generate, generationPlan } from './generate.ts';
import { ErrorAccumulator } from './metrics.ts';
import {
  CHART_BASELINES,
  chartNames,
  errorByHorizonChart,
  forecastChart,
  forecastsCsv,
  formatTable,
  jsonText,
  lowest,
  seriesTime,
  tableRows,
  verdict,
  type ForecastRow,
  type MethodMetrics,
} from './output.ts';

export interface ForecastOptions extends DataFlags {
  checkpoint: string;
  horizon?: number;
  context?: number;
  out?: string;
  evaluate: boolean;
  /** Seasonal period for the seasonal-naive baseline (default: detected per series). */
  season?: number;
  validFraction?: number;
  /** Step between held-out windows (default: the checkpoint's data stride). */
  stride?: number;
  /** Sequences per forward pass. */
  batch: number;
  cwd: string;
}

export interface EvaluationResult {
  windows: number;
  horizons: number[];
  methods: string[];
  metrics: Record<string, MethodMetrics>;
  table: string;
  verdict: string[];
}

export interface ForecastResult {
  out: string;
  source: ModelSource;
  series: number;
  horizon: number;
  contextLength: number;
  plan: number[];
  evaluation: EvaluationResult | null;
  summary: string;
  /** The data pipeline's report (stderr, as training prints it). */
  dataReport: string;
}

/** Files forecast.js writes; an existing --out holding anything else is not replaced. */
const OUR_FILES = new Set(['forecasts.csv', 'evaluation.json', 'charts']);

/** runs/<name>/checkpoints/step-N -> runs/<name>/forecast: the one folder inside a run that forecast.js writes (null for other sources). */
function runForecastDir(source: ModelSource): string | null {
  return source.kind === 'checkpoint' && basename(dirname(source.dir)) === 'checkpoints' ? join(dirname(dirname(source.dir)), 'forecast') : null;
}

function defaultOut(source: ModelSource, cwd: string): string {
  return runForecastDir(source) ?? resolve(cwd, 'forecast');
}

/**
 * The output folder: never the run (or model folder) being read, inside it or holding it (the
 * run's own `forecast/` aside), writable, and holding nothing forecast.js did not write, since it is
 * replaced as a whole.
 */
function checkOut(out: string, source: ModelSource, cwd: string, given: boolean): void {
  const label = given ? '--out' : 'the default output folder';
  const own = runForecastDir(source);
  checkApart(out, [{ ...sourceRoot(source), via: `--checkpoint ${shown(source.dir, cwd)} belongs to it` }], '--out', {
    cwd,
    suffix: 'forecast',
    allowed: own ? [own] : [],
    label,
  });
  checkWritable(out);
  if (!existsSync(out)) return;
  const other: string[] = [];
  for (const e of readdirSync(out, { withFileTypes: true })) {
    if (e.name === 'charts' && e.isDirectory())
      other.push(
        ...readdirSync(join(out, e.name), { withFileTypes: true })
          .filter((c) => !(c.isFile() && c.name.endsWith('.svg')))
          .map((c) => `charts/${c.name}`),
      );
    else if (!(OUR_FILES.has(e.name) && e.isFile())) other.push(e.name);
  }
  if (other.length)
    throw new ForecastError(
      `${label} ${shown(out, cwd)} holds files forecast.js did not write (${other.slice(0, 5).join(', ')}${other.length > 5 ? ', …' : ''}): choose a new or empty --out (the folder is replaced as a whole)`,
    );
}

/** Refuse a forecast with a non-finite value (nothing is written). */
function checkFinite(forecasts: readonly Float64Array[], jobs: readonly Job[], series: readonly CleanSeries[], source: ModelSource): void {
  let bad = 0;
  let first: { job: number; step: number; value: number } | null = null;
  forecasts.forEach((f, j) => {
    for (let k = 0; k < f.length; k++) {
      if (Number.isFinite(f[k]!)) continue;
      bad++;
      first ??= { job: j, step: k + 1, value: f[k]! };
    }
  });
  if (!first) return;
  const { job, step, value } = first as { job: number; step: number; value: number };
  const j = jobs[job]!;
  const total = forecasts.reduce((a, f) => a + f.length, 0);
  throw new NonFiniteForecastError(
    `the model's forecast is not finite: ${bad.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} forecast values (the first: series ${series[j.series]!.id}, origin ${j.origin}, step ${step} = ${String(value)}), although every weight of ${describeSource(source)} is finite: the model overflows on this input. Nothing was written. ` +
      'Check the data (values far outside what the model was trained on), or use another checkpoint of the run',
  );
}

interface Job {
  series: number;
  /** Index of the first forecast point; the context is values[origin - T, origin). */
  origin: number;
  stats: { mean: number; scale: number };
  /** Held-out window: the H actual points; null for the future forecast. */
  actual: Float64Array | null;
}

/** Season per series: --season, or detected on the series' training part (never its held-out tail). */
function seasons(
  series: readonly CleanSeries[],
  trainParts: readonly Float64Array[],
  T: number,
  season: number | undefined,
): { period: number; source: 'flag' | 'detected' | 'none'; acf: number | null }[] {
  return series.map((_, i) => {
    if (season !== undefined) return { period: season, source: 'flag' as const, acf: null };
    const d = detectSeason(trainParts[i]!, T);
    return d.period === null ? { period: 1, source: 'none' as const, acf: null } : { period: d.period, source: 'detected' as const, acf: d.acf };
  });
}

export async function runForecast(o: ForecastOptions): Promise<ForecastResult> {
  const source = await resolveModelSource(o.checkpoint, o.cwd);
  const m = source.model;
  if (m.task !== 'forecast')
    throw new ForecastError(`${describeSource(source)} is a ${m.task} model (model.task "${m.task}"): forecast.js needs a forecasting model`);
  const train = source.kind === 'checkpoint' ? source.train : null;
  const T = o.context ?? train?.data.contextLength;
  if (T === undefined)
    throw new ForecastError(
      `--context is required for a Hugging Face folder (it does not record the context length it was trained with): pass e.g. --context 512`,
    );
  const H = o.horizon ?? Math.max(...m.horizons);
  if (o.season !== undefined && o.season > T)
    throw new ForecastError(
      `--season ${o.season} is longer than the context (${T} points): seasonal naive needs one full season in the context; lower --season or raise --context`,
    );
  const out = o.out ? resolve(o.cwd, o.out) : defaultOut(source, o.cwd);
  checkOut(out, source, o.cwd, o.out !== undefined);
  const dataCfg: DataConfig = forecastDataConfig(train?.data ?? null, o, T, { validFraction: o.validFraction, stride: o.stride });
  let data;
  try {
    data = await loadData(dataCfg, { cwd: o.cwd, seed: 0 });
  } catch (e) {
    if (e instanceof DataError && /shorter than/.test(e.message))
      throw new DataError(`${e.message} (forecast.js: every series needs --context + 1 = ${T + 1} points; lower --context)`);
    throw e;
  }
  const series = data.series;
  const split = splitSeries(series, dataCfg.validFraction, T);
  const trainParts = series.map((_, i) => split.train.find((s) => s.seriesIndex === i)!.values);
  const seriesStats = trainParts.map((v) => meanStd(v));
  const season = seasons(series, trainParts, T, o.season);

  // The future forecast of every series, from its last T points.
  const jobs: Job[] = series.map((s, i) => ({
    series: i,
    origin: s.values.length,
    stats: windowStats(dataCfg.normalize, s.values, s.values.length - T, s.values.length, seriesStats[i]!),
    actual: null,
  }));
  const futureJobs = jobs.length;
  if (o.evaluate) {
    if (dataCfg.validFraction === 0)
      throw new ForecastError(
        '--evaluate needs a held-out tail, but the validation fraction is 0: pass --valid-fraction 0.1 (or the fraction the model was trained with)',
      );
    const stride = effectiveStride(dataCfg);
    let longestTail = 0;
    for (const seg of split.valid) {
      longestTail = Math.max(longestTail, seg.values.length);
      // T context points and H future points, all inside the held-out tail (windows cut as training's).
      for (const st of windowStarts(seg.values.length, T + H - 1, stride)) {
        const s = series[seg.seriesIndex]!;
        const origin = seg.offset + st + T;
        jobs.push({
          series: seg.seriesIndex,
          origin,
          stats: windowStats(dataCfg.normalize, s.values, origin - T, origin, seriesStats[seg.seriesIndex]!),
          actual: s.values.slice(origin, origin + H),
        });
      }
    }
    if (jobs.length === futureJobs) {
      throw new ForecastError(
        split.valid.length === 0
          ? `--evaluate: no series is long enough for a held-out tail (each needs 2 × (${T} + 1) points for a training and a held-out window); lower --context`
          : `--evaluate: no held-out window of ${T} + ${H} points: the longest held-out tail has ${longestTail} points (valid fraction ${dataCfg.validFraction}); lower --horizon to at most ${longestTail - T} or raise --valid-fraction`,
      );
    }
  }

  // The weights, verified (checksum, finite values), before the device is opened.
  const { tensors } = await readSourceTensors(source);
  const rt = await getRuntime();
  const model = new TimeMoeModel(rt, m, 0);
  let normalisedForecasts: Float32Array[];
  try {
    await loadSourceWeights(source, model.params, undefined, { tensors });
    const contexts = jobs.map((j) => normalise(series[j.series]!.values, j.origin - T, j.origin, j.stats));
    normalisedForecasts = await generate(rt, model, contexts, H, { batch: o.batch });
  } finally {
    model.dispose();
  }
  const forecasts = normalisedForecasts.map((f, i) => denormalise(f, jobs[i]!.stats));
  checkFinite(forecasts, jobs, series, source);

  // forecasts.csv and the charts.
  const ids = series.map((s) => s.id);
  const names = chartNames(ids);
  const files = new Map<string, string>();
  const rows: ForecastRow[] = [];
  jobs.forEach((j, i) => {
    const f = forecasts[i]!;
    for (let k = 0; k < H; k++)
      rows.push({ series: ids[j.series]!, origin: j.origin, index: j.origin + k, step: k + 1, forecast: f[k]!, actual: j.actual ? j.actual[k]! : null });
  });
  files.set('forecasts.csv', forecastsCsv(rows));
  const times = series.map((s) => seriesTime(s.time));
  series.forEach((s, i) => {
    const ctx = s.values.subarray(s.values.length - T);
    files.set(
      `charts/${names[i]}.svg`,
      forecastChart({ title: `${s.id}: next ${H} points`, start: s.values.length - T, context: ctx, forecast: forecasts[i]!, time: times[i] }),
    );
  });

  let evaluation: EvaluationResult | null = null;
  if (o.evaluate) {
    const methods = ['model', ...BASELINES];
    const acc = new Map(methods.map((k) => [k, new ErrorAccumulator(H)]));
    // Per series too, for its held-out chart: the model and the baselines it is drawn against.
    const bySeries = series.map(() => new Map(['model', ...CHART_BASELINES].map((k) => [k as string, new ErrorAccumulator(H)])));
    const perSeries = series.map(() => 0);
    const lastHeldOut = new Map<number, number>();
    jobs.forEach((j, i) => {
      if (!j.actual) return;
      perSeries[j.series]!++;
      lastHeldOut.set(j.series, i);
      const ctx = series[j.series]!.values.subarray(j.origin - T, j.origin);
      acc.get('model')!.add(forecasts[i]!, j.actual, j.stats.scale);
      bySeries[j.series]!.get('model')!.add(forecasts[i]!, j.actual, j.stats.scale);
      for (const b of BASELINES) {
        const f = baselineForecast(b as BaselineName, ctx, H, season[j.series]!.period);
        acc.get(b)!.add(f, j.actual, j.stats.scale);
        bySeries[j.series]!.get(b)?.add(f, j.actual, j.stats.scale);
      }
    });
    // Each series' last held-out window, against the baseline that did best on that series
    // (normalised MSE over steps 1..H and its held-out windows).
    const best = series.map((_, i) => {
      const mse = (k: string) => bySeries[i]!.get(k)!.atHorizons('normalised', [H]).mse[0]!;
      const b = lowest(CHART_BASELINES.map(mse));
      return b < 0 ? null : { name: CHART_BASELINES[b]!, mse: mse(CHART_BASELINES[b]!), model: mse('model') };
    });
    series.forEach((s, i) => {
      const w = lastHeldOut.get(i);
      if (w === undefined) return;
      const j = jobs[w]!;
      const ctx = s.values.subarray(j.origin - T, j.origin);
      const b = best[i];
      const others = b
        ? [
            {
              name: `best baseline here: ${b.name} (norm. MSE ${sig4(b.mse)}; model ${sig4(b.model)}; ${perSeries[i]} windows)`,
              values: baselineForecast(b.name, ctx, H, season[i]!.period),
            },
          ]
        : [];
      files.set(
        `charts/${names[i]}-held-out.svg`,
        forecastChart({
          title: `${s.id}: last held-out window (origin ${j.origin})`,
          start: j.origin - T,
          context: ctx,
          forecast: forecasts[w]!,
          actual: j.actual!,
          others,
          time: times[i],
        }),
      );
    });
    const horizons = [...new Set([...m.horizons.filter((h) => h <= H), H])].sort((a, b) => a - b);
    const metrics: Record<string, MethodMetrics> = {};
    for (const k of methods)
      metrics[k] = { normalised: acc.get(k)!.atHorizons('normalised', horizons), original: acc.get(k)!.atHorizons('original', horizons) };
    const tr = tableRows(methods, metrics, horizons);
    const windows = jobs.length - futureJobs;
    evaluation = { windows, horizons, methods, metrics, table: formatTable(methods, tr), verdict: verdict(methods, tr) };
    const perStepNormalised = Object.fromEntries(methods.map((k) => [k, acc.get(k)!.perStep('normalised')]));
    files.set(
      `charts/${names.includes('error-by-horizon') ? 'error-by-horizon-all' : 'error-by-horizon'}.svg`,
      errorByHorizonChart(perStepNormalised, methods, windows),
    );
    files.set(
      'evaluation.json',
      jsonText({
        format: 'webgpu-moe-evaluation',
        version: 1,
        checkpoint: source.dir,
        data: data.report.source,
        contextLength: T,
        horizon: H,
        stride: effectiveStride(dataCfg),
        validFraction: dataCfg.validFraction,
        normalize: dataCfg.normalize,
        generation: generationPlan(m.horizons, H),
        windows,
        averaging: 'MSE / MAE at horizon h: mean over every held-out window and steps 1..h; normalised = error / the window scale',
        series: series.map((s, i) => ({ id: s.id, windows: perSeries[i], season: season[i], bestBaseline: best[i] })),
        horizons,
        metrics,
        perStep: Object.fromEntries(methods.map((k) => [k, { normalised: acc.get(k)!.perStep('normalised'), original: acc.get(k)!.perStep('original') }])),
        verdict: evaluation.verdict,
      }),
    );
  }

  await replaceFolderAtomic(out, (tmp) => writeFiles(tmp, files), { action: 'write' });
  const plan = generationPlan(m.horizons, H);
  const lines = [
    `forecast: ${describeSource(source)}; ${series.length} series, context ${T}, horizon ${H} (heads run: ${plan.join(' + ')}${plan.length > 1 ? ', autoregressive' : ''})`,
    ...series.map(
      (s, i) => `  ${s.id}: last value ${fmtV(s.values[s.values.length - 1]!)} -> step 1 ${fmtV(forecasts[i]![0]!)}, step ${H} ${fmtV(forecasts[i]![H - 1]!)}`,
    ),
  ];
  if (evaluation) {
    const seasonNote = season
      .map(
        (s, i) => `${ids[i]} ${s.source === 'none' ? 'none found (m = 1, = naive)' : `m = ${s.period}${s.source === 'flag' ? ' (--season)' : ' (detected)'}`}`,
      )
      .join('; ');
    lines.push(
      `evaluation: ${evaluation.windows} held-out windows (time-ordered split, valid fraction ${dataCfg.validFraction}); MSE / MAE over steps 1..h; norm. = error / window scale; * = lowest in the row`,
      `  seasonal period: ${seasonNote}`,
      evaluation.table,
      ...evaluation.verdict.map((v) => `  ${v}`),
    );
  }
  const charts = [...files.keys()].filter((k) => k.startsWith('charts/')).length;
  lines.push(`written: ${out}/forecasts.csv, ${charts} charts in ${out}/charts${evaluation ? `, ${out}/evaluation.json` : ''}`);
  return {
    out,
    source,
    series: series.length,
    horizon: H,
    contextLength: T,
    plan,
    evaluation,
    summary: lines.join('\n'),
    dataReport: `[data] ${formatReport(data.report)}`,
  };
}

function sig4(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(4))) : String(v);
}

function fmtV(v: number): string {
  return Number.isFinite(v) ? Number(v.toPrecision(6)).toString() : String(v);
}
