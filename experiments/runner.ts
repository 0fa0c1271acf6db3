/**
 * `npm run experiment -- <name|all> [--fast] [--refresh] [--report-only]`: runs each scenario's
 * variants, once per seed, through the real CLI (`node train.js --config <scenario config> --set
 * ...`) into experiments/runs/<scenario>/<variant>/ (gitignored), diagnoses every run, measures the
 * harm, and writes the report with its SVG charts. Only `--refresh` writes the committed
 * experiments/results/<scenario>/; without it the report goes to experiments/runs/results/, so an
 * experiment never modifies a tracked file unless asked to. `--fast` runs the small versions (the
 * ones the tests use) into experiments/runs/fast/.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { loadConfig } from '../src/train/config-file.ts';
import { EXIT } from '../src/train/exit-codes.ts';
import { writeFileAtomic } from '../src/util/atomic-write.ts';
import { injectCliFault, reportCliError } from '../src/util/cli-errors.ts';
import type { RunMetrics } from '../src/report/metrics-reader.ts';
import { readMetrics } from '../src/report/metrics-file.ts';
import { summarize, writeComparisonReport } from '../src/report/report.ts';
import { diagnoseArms, findingsMarkdown, harmMarkdown, measureHarm, type ArmFindings } from './evaluate.ts';
import { SCENARIOS, type HarmResult, type Mode, type RunData, type Scenario, type ShownRun, type Variant } from './scenarios.ts';

export const REPO = resolve(import.meta.dirname, '..');

/** An experiment that could not run: its train.js failed (exit 1), or --report-only found no run (exit 2). src/util/cli-errors.ts prints it. */
export class ExperimentError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'ExperimentError';
  }
}
const TRAIN_JS = join(REPO, 'train.js');

export interface RunOptions {
  mode: Mode;
  /** Runs go to <runsRoot>/<scenario>/<variant>/. */
  runsRoot: string;
  /** Reports go to <resultsRoot>/<scenario>/. */
  resultsRoot: string;
  /** Rebuild the reports from the runs already on disk, without training. */
  reportOnly?: boolean;
  log?: (line: string) => void;
}

export interface ScenarioResult<O> {
  outcome: O;
  /** Every run, every seed (the first seed's have `primary`). */
  runs: RunData[];
  harm: HarmResult;
  /** The diagnosis of every run the report shows, then of the other seeds' runs. */
  findings: ArmFindings[];
  readme: string;
  svgs: string[];
  seconds: number;
}

/**
 * Where runs and reports go. Everything but `--refresh`'s reports is under experiments/runs/
 * (gitignored): a plain run leaves the tracked tree as it was. Fast reports are never committed.
 */
export function defaultRoots(mode: Mode, refresh = false): { runsRoot: string; resultsRoot: string } {
  const runs = join(REPO, 'experiments', 'runs');
  if (mode === 'fast') return { runsRoot: join(runs, 'fast'), resultsRoot: join(runs, 'fast', 'results') };
  return { runsRoot: runs, resultsRoot: refresh ? join(REPO, 'experiments', 'results') : join(runs, 'results') };
}

/** Quote an argument for the command line shown in a report (POSIX shell). */
function shq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs already done in this process, keyed by their effective config (without logging): a
 * scenario that reads the same run another way (pooled-vs-per-layer reads router-init's failure
 * run) reuses it instead of training it again.
 */
const done = new Map<string, RunData>();

function configKey(configPath: string, sets: readonly string[]): string {
  const { logging: _logging, ...rest } = loadConfig(configPath, sets);
  return JSON.stringify(rest);
}

async function runVariant(scenario: Scenario<unknown>, variant: Variant, seed: number, opts: RunOptions): Promise<RunData> {
  const configRel = join('experiments', 'configs', scenario.config);
  const primary = seed === scenario.seeds[opts.mode][0];
  const runSets = [...scenario.sets[opts.mode], `seed=${seed}`, ...variant.sets];
  const key = `${opts.runsRoot}\n${configKey(join(REPO, configRel), runSets)}`;
  const previous = done.get(key);
  if (previous) {
    opts.log?.(`[experiment] ${scenario.name} / ${variant.slug} (seed ${seed}): the same config as ${relative(opts.runsRoot, previous.dir)}, reusing that run`);
    return { ...previous, variant, primary, reused: relative(opts.runsRoot, previous.dir) };
  }
  // The first seed's run keeps the plain name (what the tests, fixtures and fast runs use).
  const dir = join(opts.runsRoot, scenario.name, primary ? variant.slug : `${variant.slug}-seed${seed}`);
  // Relative to the repository (the cwd), so the command shown in the report is portable.
  const sets = [...runSets, `logging.dir=${relative(REPO, dir)}`, 'logging.progress=none'];
  const args = [TRAIN_JS, '--config', join(REPO, configRel), ...sets.flatMap((s) => ['--set', s])];
  const command = ['node', 'train.js', '--config', configRel, ...sets.flatMap((s) => ['--set', shq(s)])].join(' ');
  const metricsPath = join(dir, 'metrics.jsonl');
  const infoPath = join(dir, 'run.json');
  const load = (seconds: number): RunData => {
    const data: RunData = { variant, seed, primary, dir, metrics: readMetrics(metricsPath), seconds, command };
    done.set(key, data);
    return data;
  };
  if (opts.reportOnly) {
    if (!existsSync(metricsPath))
      throw new ExperimentError(
        `${scenario.name} / ${variant.slug} (seed ${seed}): no run at ${metricsPath} (run it first, without --report-only)`,
        EXIT.badInput,
      );
    const info = existsSync(infoPath) ? (JSON.parse(readFileSync(infoPath, 'utf8')) as { seconds?: number }) : {};
    // Runs from before run.json existed: the log was created at the start, the metrics last written at the end.
    const born = existsSync(join(dir, 'train.log')) ? statSync(join(dir, 'train.log')).birthtimeMs : 0;
    const seconds = info.seconds ?? (born > 0 ? (statSync(metricsPath).mtimeMs - born) / 1000 : NaN);
    return load(seconds);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  opts.log?.(`[experiment] ${scenario.name} / ${variant.slug} (seed ${seed}): ${command}`);
  const logPath = join(dir, 'train.log');
  const fd = openSync(logPath, 'w');
  const t0 = performance.now();
  // Async, not spawnSync: a caller's event loop (vitest's worker RPC) must keep running meanwhile.
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  const status = await new Promise<number | string>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => res(code ?? signal ?? 'unknown'));
  }).finally(() => closeSync(fd));
  const seconds = (performance.now() - t0) / 1000;
  // A failure variant that diverges is the outcome the scenario shows, not an error of the runner.
  if (status !== 0 && !(variant.diverges && status === EXIT.diverged)) {
    const tail = readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n');
    throw new ExperimentError(`${scenario.name} / ${variant.slug}: train.js exited with ${status}\n${tail}`, EXIT.stopped);
  }
  opts.log?.(`[experiment] ${scenario.name} / ${variant.slug}: done in ${seconds.toFixed(1)} s`);
  writeFileAtomic(infoPath, `${JSON.stringify({ command, seconds })}\n`);
  return load(seconds);
}

function description<O>(
  scenario: Scenario<O>,
  outcome: O,
  harm: HarmResult,
  findings: readonly ArmFindings[],
  runs: readonly RunData[],
  mode: Mode,
  seconds: number,
): string {
  const e = scenario.explain(outcome, mode, harm);
  const flag = mode === 'fast' ? ' --fast' : '';
  const primary = runs.filter((r) => r.primary);
  const others = scenario.seeds[mode].slice(1);
  const time = (r: RunData) =>
    r.reused ? `the same run as \`${r.reused}\`, not trained again` : Number.isFinite(r.seconds) ? `${r.seconds.toFixed(0)} s` : 'wall time not recorded';
  return [
    scenario.intro,
    '',
    `Reproduce: \`npm run experiment -- ${scenario.name}${flag}\` (${mode} version; ${runs.length} run${runs.length > 1 ? 's' : ''}, ${runs.every((r) => r.reused) ? 'all reused from an earlier scenario' : Number.isFinite(seconds) ? `${seconds.toFixed(0)} s on the machine that wrote this report` : 'time not recorded'}).${mode === 'full' ? ' Add `--refresh` to rewrite this committed report.' : ''} Each run is the real CLI, from the repository root:`,
    '',
    ...primary.map((r) => `- ${r.variant.label} (${time(r)}):\n  \`${r.command}\``),
    ...(others.length
      ? [
          '',
          `Seed${others.length > 1 ? 's' : ''} ${others.join(', ')}: the same commands with \`--set seed=N\` and \`logging.dir=...-seedN\` (${runs
            .filter((r) => !r.primary)
            .map((r) => `${r.variant.slug} seed ${r.seed}: ${time(r)}`)
            .join('; ')}).`,
        ]
      : []),
    '',
    '## What happened',
    '',
    e.happened,
    '',
    '## Harm: what a user sees',
    '',
    harm.metrics.length ? harmMarkdown(harm) : 'This scenario has no fix arm to compare against (see What happened).\n',
    '## What the diagnosis says',
    '',
    findingsMarkdown(findings),
    '## Why',
    '',
    e.why,
    '',
    '## The fix',
    '',
    e.fix,
    '',
    "Every number above is computed from the runs' metrics.jsonl when this report is generated.",
  ].join('\n');
}

export async function runScenario<O>(scenario: Scenario<O>, opts: RunOptions): Promise<ScenarioResult<O>> {
  const t0 = performance.now();
  const erased = scenario as unknown as Scenario<unknown>;
  const runs: RunData[] = [];
  // One at a time: lavapipe uses every core. Seed by seed, so a stopped refresh has whole pairs.
  for (const seed of scenario.seeds[opts.mode]) for (const v of scenario.variants) runs.push(await runVariant(erased, v, seed, opts));
  const outcome = scenario.outcome(runs, opts.mode);
  const harm = measureHarm(erased, runs, opts.mode);
  const seconds = opts.reportOnly ? runs.reduce((a, r) => a + (r.reused ? 0 : r.seconds), 0) : (performance.now() - t0) / 1000;

  const derivedDir = join(opts.runsRoot, scenario.name);
  const writeDerived = (name: string, lines: readonly object[]) => {
    const p = join(derivedDir, name);
    writeFileAtomic(p, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    return p;
  };
  const primary = runs.filter((r) => r.primary);
  const shown: ShownRun[] =
    scenario.reportRuns?.(primary, writeDerived, opts.mode) ??
    primary.map((r) => ({ label: r.variant.label, dir: r.dir, role: r.variant.role, seed: r.seed, findings: r.variant.findings[opts.mode] }));
  const findings = diagnoseArms(
    erased,
    shown,
    runs.filter((r) => !r.primary),
    opts.mode,
  );
  const outDir = join(opts.resultsRoot, scenario.name);
  rmSync(outDir, { recursive: true, force: true });
  const report = writeComparisonReport({
    outDir,
    title: scenario.title,
    description: description(scenario, outcome, harm, findings, runs, opts.mode, seconds),
    runs: shown,
    charts: scenario.charts,
    summary: (m) => [...summarize(m), ...(scenario.summary?.(m) ?? [])],
  });
  opts.log?.(`[experiment] ${scenario.name}: report ${relative(REPO, report.readme)} (${report.svgs.length} charts)`);
  for (const a of findings.filter((x) => !x.ok))
    opts.log?.(
      `[experiment] ${scenario.name}: the diagnosis of ${a.label}${a.seed !== null ? ` (seed ${a.seed})` : ''} is not as expected: ${[...a.missing.map((k) => `${k} missing`), ...a.unexpected.map((k) => `${k} present`)].join(', ')}`,
    );
  return { outcome, runs, harm, findings, readme: report.readme, svgs: report.svgs, seconds };
}

const USAGE = `usage: npm run experiment -- <${SCENARIOS.map((s) => s.name).join('|')}|all> [--fast] [--refresh] [--report-only]
  --fast         the small versions (what the tests run), into experiments/runs/fast/
  --refresh      write the committed reports, experiments/results/<name>/ (default: experiments/runs/results/, gitignored)
  --report-only  rebuild the reports from the runs already on disk, without training`;
const FLAGS = ['--fast', '--refresh', '--report-only', '--help'];

export async function main(argv: string[]): Promise<number> {
  const fast = argv.includes('--fast');
  const names = argv.filter((a) => !a.startsWith('--'));
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  injectCliFault('experiments/run.js');
  const unknownFlags = argv.filter((a) => a.startsWith('--') && !FLAGS.includes(a));
  if (names.length === 0 || unknownFlags.length) {
    console.error(unknownFlags.length ? `error: unknown option ${unknownFlags.join(', ')}\n${USAGE}` : USAGE);
    return 2;
  }
  const missing = names.filter((n) => n !== 'all' && !SCENARIOS.some((s) => s.name === n));
  if (missing.length) {
    console.error(`error: unknown experiment ${missing.join(', ')}\n${USAGE}`);
    return 2;
  }
  const refresh = argv.includes('--refresh');
  if (fast && refresh) {
    console.error(`error: --refresh writes the committed full reports; the --fast versions are never committed\n${USAGE}`);
    return 2;
  }
  const picked = names.includes('all') ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
  const mode: Mode = fast ? 'fast' : 'full';
  const opts: RunOptions = { mode, ...defaultRoots(mode, refresh), reportOnly: argv.includes('--report-only'), log: (l) => console.log(l) };
  const t0 = performance.now();
  for (const s of picked) {
    try {
      const r = await runScenario(s, opts);
      console.log(`[experiment] ${s.name}: ${r.seconds.toFixed(1)} s`);
    } catch (e) {
      return reportCliError(e, 'experiments/run.js');
    }
  }
  console.log(`[experiment] total ${((performance.now() - t0) / 1000).toFixed(1)} s (${mode})`);
  return 0;
}
