/**
 * `node diagnose.js RUN [RUN ...] [--json] [--fail-on error|warning|never]`: explain saved runs, or
 * a run in progress (a cut last line of metrics.jsonl is the line being written: left out).
 *
 * Exit codes (docs/FINDINGS.md, "The command"):
 *   0  diagnosed, no finding at or above --fail-on (default: no error finding; warnings exit 0)
 *   1  diagnosed, and some run has a finding at or above --fail-on (CI: fail the job)
 *   2  bad input: a missing folder, not a run folder, unreadable or malformed metrics/header
 *  70  a bug (src/util/cli-errors.ts: the only exit that prints a stack trace)
 * With several runs the largest code wins; every readable run is still diagnosed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { diagnoseRun } from './diagnoser.ts';
import { formatFinding, jsonText, toJson, type DiagnosisJson } from './format.ts';
import { MetricsTextError, parseMetricsText } from './records.ts';
import type { RunHeaderInput } from './types.ts';
import { injectCliFault, reportCliError } from '../util/cli-errors.ts';

export const DIAGNOSE_EXIT = { clean: 0, findings: 1, badInput: 2 } as const;

export class DiagnoseInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiagnoseInputError';
  }
}

export interface LoadedRun {
  dir: string;
  metricsPath: string;
  header: RunHeaderInput;
  hasHeader: boolean;
  records: ReturnType<typeof parseMetricsText>['records'];
  partialLastLine: boolean;
}

/** Read a run folder (or its metrics .jsonl); every problem is a DiagnoseInputError naming the file and the fix. */
export function loadRunFolder(arg: string, cwd = process.cwd()): LoadedRun {
  const path = resolve(cwd, arg);
  if (!existsSync(path))
    throw new DiagnoseInputError(`${arg}: no such folder. Give a run folder train.js wrote (its logging.dir, e.g. runs/small-moe), which holds metrics.jsonl`);
  const isFile = statSync(path).isFile();
  if (isFile && !basename(path).endsWith('.jsonl')) throw new DiagnoseInputError(`${arg}: not a run folder or a metrics .jsonl file`);
  const dir = isFile ? dirname(path) : path;
  const metricsPath = isFile ? path : join(dir, 'metrics.jsonl');
  if (!existsSync(metricsPath))
    throw new DiagnoseInputError(
      `${arg}: no metrics.jsonl here, so it is not a run folder; train into it first (node train.js --config <file>, logging.dir names the folder)`,
    );
  let text: string;
  try {
    text = readFileSync(metricsPath, 'utf8');
  } catch (e) {
    throw new DiagnoseInputError(`${metricsPath}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check its permissions`);
  }
  let parsed: ReturnType<typeof parseMetricsText>;
  try {
    parsed = parseMetricsText(text, metricsPath);
  } catch (e) {
    if (e instanceof MetricsTextError) throw new DiagnoseInputError(`${e.message}; fix or delete that line (train.js writes one JSON object per line)`);
    throw e;
  }
  if (!parsed.records.length)
    throw new DiagnoseInputError(
      `${metricsPath}: no train or validation records yet${parsed.partialLastLine ? ' (one line is being written)' : ''}: the run has not logged a step; try again once it has`,
    );
  const headerPath = join(dir, 'header.json');
  let header: RunHeaderInput = {};
  const hasHeader = existsSync(headerPath);
  if (hasHeader) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(headerPath, 'utf8'));
    } catch (e) {
      throw new DiagnoseInputError(
        `${headerPath}: not valid JSON (${(e as Error).message}); train.js writes it at the start of a run: delete it to diagnose without the run's config`,
      );
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new DiagnoseInputError(`${headerPath}: expected a JSON object; delete it to diagnose without the run's config`);
    header = raw as RunHeaderInput;
  }
  return { dir, metricsPath, header, hasHeader, records: parsed.records, partialLastLine: parsed.partialLastLine };
}

const RANK = { error: 2, warning: 1 } as const;

export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
  err: (s: string) => void = (s) => process.stderr.write(`${s}\n`),
): Promise<number> {
  const program = new Command()
    .name('diagnose.js')
    .description(
      'webgpu-moe: explain a training run from its metrics: what went wrong, why, the config change that fixes it, and the experiment that reproduces it (docs/FINDINGS.md)',
    )
    .argument(
      '<run...>',
      'run folders train.js wrote (their logging.dir, holding metrics.jsonl and header.json), or metrics .jsonl files; a run in progress is fine',
    )
    .option('--json', 'print one JSON document: an array with one entry per run (findings, notes, steps)')
    .option('--fail-on <severity>', 'exit 1 when a finding is at least this severe: error, warning or never', 'error')
    .addHelpText(
      'after',
      '\nExit codes: 0 diagnosed (no finding at or above --fail-on), 1 diagnosed with such a finding, 2 bad input (a missing folder, not a run folder, unreadable metrics).',
    )
    .showHelpAfterError('(node diagnose.js --help lists every flag)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? DIAGNOSE_EXIT.clean : DIAGNOSE_EXIT.badInput;
    throw e;
  }
  const opts = program.opts<{ json?: boolean; failOn: string }>();
  if (!['error', 'warning', 'never'].includes(opts.failOn)) {
    err(`error: --fail-on ${opts.failOn}: expected error, warning or never`);
    return DIAGNOSE_EXIT.badInput;
  }
  const failRank = opts.failOn === 'never' ? Infinity : RANK[opts.failOn as 'error' | 'warning'];
  try {
    injectCliFault('diagnose.js');
    return diagnoseAll(program.args, opts, failRank, out, err);
  } catch (e) {
    // The one table (src/util/cli-errors.ts): an unreadable file is an I/O error, anything unknown a bug.
    return reportCliError(e, 'diagnose.js', { out, err });
  }
}

function diagnoseAll(args: readonly string[], opts: { json?: boolean }, failRank: number, out: (s: string) => void, err: (s: string) => void): number {
  let code: number = DIAGNOSE_EXIT.clean;
  const docs: DiagnosisJson[] = [];
  for (const arg of args) {
    let run: LoadedRun;
    try {
      run = loadRunFolder(arg);
    } catch (e) {
      if (e instanceof DiagnoseInputError) {
        err(`error: ${e.message}`);
        code = Math.max(code, DIAGNOSE_EXIT.badInput);
        continue;
      }
      throw e;
    }
    const d = diagnoseRun(run.header, run.records);
    if (d.findings.some((f) => RANK[f.severity] >= failRank)) code = Math.max(code, DIAGNOSE_EXIT.findings);
    if (opts.json) {
      docs.push(toJson(arg, d, { partialLastLine: run.partialLastLine }));
      continue;
    }
    const planned =
      typeof (run.header.config as { schedule?: { steps?: unknown } } | undefined)?.schedule?.steps === 'number'
        ? (run.header.config as { schedule: { steps: number } }).schedule.steps
        : null;
    const inProgress = run.partialLastLine || (planned !== null && (d.state.lastStep ?? 0) < planned);
    out(
      `== ${arg}${run.hasHeader ? '' : ' (no header.json: config defaults assumed)'}${inProgress ? ` (in progress or stopped: ${d.state.lastStep ?? 0}${planned !== null ? ` of ${planned}` : ''} steps)` : ''}`,
    );
    for (const f of d.findings) out(formatFinding(f));
    out(d.summary);
  }
  if (opts.json) out(jsonText(docs));
  return code;
}
