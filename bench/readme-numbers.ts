/**
 * The README numbers that are cheap to measure (about two minutes on lavapipe), written to
 * bench/results/readme-numbers.{json,md} so each one has a committed file behind it
 * (docs/README-NUMBERS.md lists every README number and its source):
 *   - the memory plans of the shipped configs (rtx-3090, and the 50M config on lavapipe);
 *   - one small-moe step (the default config's B=16 T=64): dispatches and submits per step, the
 *     CPU time to record it (bind groups cached and rebuilt), its peak pool bytes;
 *   - logging.metricsEvery 10 vs 1 over 60 steps of the default config, interleaved runs, with
 *     whether the losses are bit-identical.
 * Run: node --import tsx bench/readme-numbers.ts [--quick]   (--quick: 20 steps, one round)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { parseConfig, type TrainConfig } from '../src/train/config.ts';
import { loadConfig } from '../src/train/config-file.ts';
import { planRun } from '../src/train/plan/planner.ts';
import { namedTarget, thisTarget, GIB } from '../src/train/plan/targets.ts';
import { TimeMoeModel } from '../src/model/time-moe.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { Trainer } from '../src/train/step/trainer.ts';
import { loadData } from '../src/train/data/index.ts';
import { runTraining } from '../src/train/run/run.ts';
import { readMetrics } from '../src/report/metrics-file.ts';
import { environment, round, summarize, writeResults, type BenchRow, type SuiteResult } from './harness.ts';

const ROOT = join(import.meta.dirname, '..');
const quick = process.argv.includes('--quick');
const MIB = 2 ** 20;

function plans(): SuiteResult {
  const rows: BenchRow[] = [];
  const add = (file: string, target: 'rtx-3090' | 'lavapipe') => {
    const cfg = loadConfig(join(ROOT, file));
    const p = planRun(cfg, { target: namedTarget(target), hostBytes: totalmem() });
    rows.push({
      config: file,
      target,
      'micro-batch × context': `${cfg.schedule.microBatch} × ${cfg.data.contextLength}`,
      parameters: p.model.parameters,
      'peak GiB': round(p.peakBytes / GIB, 2),
      'peak MiB': round(p.peakBytes / MIB, 1),
      fits: p.deviceFits ? 'yes' : 'no',
      'largest buffer MiB': round(p.largestBuffer.bytes / MIB, 1),
      'dispatches/step (meta runtime)': p.dispatchesPerStep,
      suggestion: p.suggestions[0]?.set.join(' ') ?? '',
    });
  };
  for (const f of ['small-moe.json', 'timemoe-50m-3090.json', 'timemoe-200m-3090.json']) add(f, 'rtx-3090');
  add('small-moe.json', 'lavapipe');
  add('timemoe-50m-3090.json', 'lavapipe');
  return {
    title: 'memory plans of the shipped configs (train.js --plan --json)',
    rows,
    notes: ['planRun on the meta runtime; the same numbers as `node train.js --config <file> --plan --json [--target lavapipe]`.'],
  };
}

async function smallMoeStep(): Promise<SuiteResult> {
  const rt = await getRuntime({ announce: false });
  const cfg = loadConfig(join(ROOT, 'small-moe.json'));
  const data = await loadData(cfg.data, { cwd: ROOT, seed: cfg.seed });
  const model = new TimeMoeModel(rt, cfg.model, cfg.seed);
  const opt = new AdamW(model.params, cfg.optim);
  const trainer = new Trainer(rt, model, opt, cfg);
  const batch = data.train.nextBatch(cfg.schedule.microBatch);
  let dispatches = 0;
  let submits = 0;
  let peak = 0;
  for (let i = 1; i <= 3; i++) {
    const [d0, s0] = [rt.recorder.dispatches, rt.counters.submits];
    const m = await trainer.resolve(trainer.record(i, [batch]));
    // The step alone: the readback's copy is not a dispatch, and its submit is the step's.
    [dispatches, submits, peak] = [rt.recorder.dispatches - d0, rt.counters.submits - s0, m.peakBytes];
  }
  const rows: BenchRow[] = [
    { what: 'dispatches per optimizer step (step 3)', value: dispatches },
    { what: 'submits per optimizer step (with its metrics readback)', value: submits },
    { what: 'peak pool MiB of the step', value: round(peak / MIB, 1) },
  ];
  // Cached and rebuilt alternate step by step: the shared machine's load drifts between runs.
  const ms: Record<'cached' | 'rebuilt', number[]> = { cached: [], rebuilt: [] };
  for (let i = 0; i < 20; i++) {
    const kind = i % 2 ? 'rebuilt' : 'cached';
    if (kind === 'rebuilt') rt.recorder.bindGroups.forget();
    const t0 = performance.now();
    const p = trainer.record(100 + i, [batch]);
    ms[kind].push(performance.now() - t0);
    await trainer.resolve(p);
  }
  for (const kind of ['cached', 'rebuilt'] as const) {
    const t = summarize(ms[kind], 1);
    rows.push({
      what: `CPU ms to record a step, bind groups ${kind} (10 steps, alternating)`,
      value: round(t.medianMs, 2),
      'min–max': `${round(t.bestMs, 2)}–${round(t.maxMs, 2)}`,
    });
  }
  trainer.dispose();
  opt.dispose();
  model.dispose();
  return {
    title: 'one small-moe step (small-moe.json: B=16, T=64)',
    rows,
    columns: ['what', 'value', 'min–max'],
    notes: ['Trainer.record then resolve, as train.js does with metricsEvery 1; the record time is host CPU time only (the GPU work runs after the submit).'],
  };
}

async function metricsEvery(): Promise<SuiteResult> {
  const steps = quick ? 20 : 60;
  const rounds = quick ? 1 : 2;
  const rt = await getRuntime({ announce: false });
  const run = async (every: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'readme-numbers-'));
    const base = loadConfig(join(ROOT, 'small-moe.json'));
    const cfg: TrainConfig = parseConfig({
      ...base,
      schedule: { ...base.schedule, steps, warmupSteps: Math.min(base.schedule.warmupSteps, steps / 2) },
      logging: { ...base.logging, dir, validEvery: 0, validBatches: 1, progress: 'none', metricsEvery: every },
      checkpoint: { every: 0, keep: 1 },
    });
    const t0 = performance.now();
    await runTraining(cfg, { resume: false, target: thisTarget(rt.caps), cwd: ROOT, budgetBytes: undefined });
    const wall = performance.now() - t0;
    const lines = readMetrics(join(dir, 'metrics.jsonl')).train;
    rmSync(dir, { recursive: true, force: true });
    return { wall, trainMs: lines.reduce((a, m) => a + (m.ms ?? 0), 0), losses: lines.map((m) => m.loss) };
  };
  const one: Awaited<ReturnType<typeof run>>[] = [];
  const ten: Awaited<ReturnType<typeof run>>[] = [];
  // Interleaved: the shared 2-core machine's load changes between runs.
  for (let r = 0; r < rounds; r++) {
    one.push(await run(1));
    ten.push(await run(10));
  }
  const same =
    ten.every((t) => JSON.stringify(t.losses) === JSON.stringify(one[0]!.losses)) &&
    one.every((t) => JSON.stringify(t.losses) === JSON.stringify(one[0]!.losses));
  const rows: BenchRow[] = [];
  for (const [every, runs] of [
    [1, one],
    [10, ten],
  ] as const) {
    const s = summarize(
      runs.map((x) => x.trainMs / steps),
      1,
    );
    rows.push({
      metricsEvery: every,
      runs: runs.length,
      steps,
      'ms/step (median of runs)': round(s.medianMs, 1),
      'min–max': `${round(s.bestMs, 1)}–${round(s.maxMs, 1)}`,
      'run wall s (each)': runs.map((x) => round(x.wall / 1000, 1)).join(', '),
    });
  }
  const m1 = summarize(
    one.map((x) => x.trainMs),
    1,
  ).medianMs;
  const m10 = summarize(
    ten.map((x) => x.trainMs),
    1,
  ).medianMs;
  return {
    title: `logging.metricsEvery 10 vs 1, ${steps} steps of small-moe.json`,
    rows,
    notes: [
      `metricsEvery 10 took ${round((100 * (m1 - m10)) / m1, 1)}% less train time than 1 (medians of ${rounds} interleaved run(s) each; ms summed from metrics.jsonl, validation off).`,
      `Losses bit-identical across all runs: ${same ? 'yes' : 'NO'}.`,
    ],
  };
}

const rt = await getRuntime({ announce: false });
const results = [plans(), await smallMoeStep(), await metricsEvery()];
const files = writeResults(quick ? 'readme-numbers-quick' : 'readme-numbers', results, environment(rt));
console.log(`wrote ${files.md}`);
