/**
 * Command-line interface of train.js. One exit-code table for --plan and training (exit-codes.ts,
 * docs/RELIABILITY.md "Exit codes"): 0 done, 1 stopped, 2 bad input, 3 diverged, 129 SIGHUP, 130 SIGINT,
 * 131 SIGQUIT, 143 SIGTERM.
 */
import { parseCommandLine } from './parse.ts';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config-file.ts';
import { EXIT } from '../exit-codes.ts';
import { checkFaults } from '../run/faults.ts';
import { injectCliFault, reportCliError } from '../../util/cli-errors.ts';
import { formatOutcome } from '../run/outcome.ts';
import { shownPath } from '../run/run-dir.ts';
import { planFor, runTraining } from '../run/run.ts';
import { formatPlan } from '../plan/format.ts';
import { planRefuses } from '../plan/planner.ts';
import { estimateStepTime, hostAdamWRate } from '../plan/step-time.ts';
import { TARGET_NAMES, TargetNameSchema, namedTarget, thisTarget, type TargetName, type TargetProfile } from '../plan/targets.ts';
import { getRuntime } from '../../kernels/node/dawn.ts';
import { runSmoke } from './smoke.ts';
import { withDashboard } from './dashboard.ts';

const GiB = 2 ** 30;

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${v}"`);
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${v}"`);
  return n;
}

function targetName(v: string): TargetName {
  const r = TargetNameSchema.safeParse(v);
  if (!r.success) throw new InvalidArgumentError(`unknown target "${v}" (one of: ${TARGET_NAMES.join(', ')})`);
  return r.data;
}

/**
 * `--set`'s value: one `path=value` argument. Written with a space (`--set optim.lr 3e-4`) the
 * value would be left over as a stray argument ("too many arguments"): say how to write it.
 */
function setAssignment(argv: readonly string[]) {
  return (v: string, acc: string[]): string[] => {
    const eq = v.indexOf('=');
    if (eq > 0 && eq < v.length - 1) return [...acc, v];
    const at = argv.findIndex((a, i) => a === v && (argv[i - 1] === '--set' || argv[i - 1] === '-s'));
    const next = at >= 0 ? argv[at + 1] : undefined;
    const rest = next !== undefined && !next.startsWith('-') ? next : undefined;
    if (eq > 0) throw new InvalidArgumentError(`"${v}" has no value after "=": write --set ${v}${rest ?? '<value>'} (one argument: no space after "=")`);
    if (eq === 0) throw new InvalidArgumentError(`"${v}" has no key before "=": write --set <path>=<value>, e.g. --set optim.lr=3e-4`);
    throw new InvalidArgumentError(
      `expected path=value, got "${v}": write --set ${v}=${rest ?? '<value>'} (one argument, "=" between the key path and the value)`,
    );
  };
}

/** `--allow-config-change [keys]` as RunOptions take it: true for every key, or the keys listed. */
function allowList(v: string | true | undefined): true | string[] | undefined {
  if (v === undefined || v === true) return v;
  return v
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

interface CliOptions {
  config?: string;
  set: string[];
  resume?: boolean;
  resumeFrom?: string;
  /** commander's value of `--allow-config-change [keys]`: true without keys. */
  allowConfigChange?: string | true;
  overwrite?: boolean;
  plan?: boolean;
  json?: boolean;
  target: TargetName;
  budgetGb?: number;
  hostGb?: number;
  /** M parameters/s. */
  hostAdamwRate?: number;
  smoke?: boolean;
  stopAfter?: number;
  profile?: boolean;
  /** commander's value of `--ui [port]`: true without a port, undefined without the flag. */
  ui?: string | true;
  uiHost?: string;
}

/** Flags that cannot go together, as "error: ..." text, or null. */
function conflicting(o: CliOptions): string | null {
  if (o.overwrite && (o.resume || o.resumeFrom !== undefined))
    return '--overwrite starts a fresh run (moving the old one aside) and --resume continues the old one: pass one of them';
  if (o.plan && (o.resume || o.resumeFrom !== undefined || o.overwrite || o.stopAfter !== undefined))
    return '--plan only prints the memory plan: leave out --resume, --resume-from, --overwrite and --stop-after';
  if (o.allowConfigChange !== undefined && !o.resume && o.resumeFrom === undefined)
    return '--allow-config-change lets a resume go on with a changed config: pass it with --resume or --resume-from';
  if (o.ui !== undefined && (o.plan || o.smoke)) return '--ui shows a training run: leave it out with --plan and --smoke';
  if (o.uiHost !== undefined && o.ui === undefined) return '--ui-host needs --ui (e.g. --ui 8080 --ui-host 0.0.0.0)';
  if (o.hostAdamwRate !== undefined && !o.plan) return '--host-adamw-rate is for the --plan step time: pass it with --plan';
  return null;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('train.js')
    .description('webgpu-moe: train Time-MoE-style Mixture-of-Experts models on WebGPU')
    .option('-c, --config <file>', 'training config JSON (e.g. small-moe.json)')
    .option('-s, --set <path=value>', 'override a config value, e.g. --set optim.lr=3e-4 (repeatable)', setAssignment(argv), [] as string[])
    .option('--resume', 'continue from the latest checkpoint in <logging.dir>/checkpoints (it says which newer ones it skipped, and why)')
    .option('--resume-from <step|dir>', 'continue from this checkpoint: a step number of this run, or a checkpoint folder (newer checkpoints are moved aside)')
    .option(
      '--allow-config-change [keys]',
      'with --resume / --resume-from: continue although the config changed in what the run computes (data, model, precision, loss, ...): these comma-separated keys or sections, or every key without a list; each change is printed (docs/CONFIG.md)',
    )
    .option('--overwrite', 'start a fresh run in a logging.dir that holds a run, moving the old run into <logging.dir>/set-aside/ (nothing is deleted)')
    .option('--plan', 'print the memory plan and step time for the config and exit (0 the device fits, 2 it does not; docs/PLANNER.md "Verdicts")')
    .option('--json', 'with --plan: print the plan as JSON')
    .option('--target <name>', `device to plan for: ${TARGET_NAMES.join(', ')} (this = the open adapter)`, targetName, 'rtx-3090' as TargetName)
    .option('--stop-after <step>', 'save a checkpoint and exit after this optimizer step (continue later with --resume)', positiveInt)
    .option('--budget-gb <GiB>', "device memory for the plan check (default: the target's, e.g. 24 for rtx-3090)", positiveNumber)
    .option(
      '--host-gb <GiB>',
      'host memory for an offloaded optimizer (optim.offload "host"; default: this machine\'s RAM); with --plan, the training machine\'s RAM, and its verdict then counts in the exit code',
      positiveNumber,
    )
    .option(
      '--host-adamw-rate <M/s>',
      "with --plan: the training machine's host AdamW rate in million parameters/s, all threads (default: measured once on this machine and cached)",
      positiveNumber,
    )
    .option('--profile', 'time every GPU kernel of the training steps (timestamp queries); print a table by op type and write <logging.dir>/profile.json')
    .option('--smoke', 'run a short GPU smoke job (device, kernels, readback) and exit')
    .option('--ui [port]', 'serve a live dashboard of the run on 127.0.0.1 and print its URL (default port 8080; 0 picks a free one; docs/DASHBOARD.md)')
    .option('--ui-host <address>', 'with --ui: listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0: anyone who can reach the machine sees the run)')
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 stopped (bad steps, I/O failure), 2 bad input, 3 diverged, 70 a bug, 129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 143 SIGTERM (each signal: save a checkpoint, then exit).',
    )
    .showHelpAfterError('(node train.js --help lists every flag)');
  const parseExit = parseCommandLine(program, argv);
  if (parseExit !== null) return parseExit;
  const opts = program.opts<CliOptions>();
  const cwd = process.cwd();
  try {
    injectCliFault('train.js');
    // Before --smoke's own exit, so `--smoke --ui` is refused rather than ignored.
    const conflict = conflicting(opts);
    if (conflict) {
      console.error(`error: ${conflict}`);
      return EXIT.badInput;
    }
    if (opts.smoke) {
      await runSmoke();
      return EXIT.done;
    }
    if (!opts.config) {
      console.error('error: --config <file> is required (try: node train.js --config small-moe.json)');
      return EXIT.badInput;
    }
    checkFaults();
    const cfg = loadConfig(opts.config, opts.set);
    const budgetBytes = opts.budgetGb === undefined ? undefined : opts.budgetGb * GiB;
    const hostBytes = opts.hostGb === undefined ? undefined : opts.hostGb * GiB;
    const target: TargetProfile =
      opts.target === 'this' ? thisTarget((await getRuntime({ announce: !opts.json, kernels: cfg.device.kernels })).caps) : namedTarget(opts.target);
    if (opts.plan) {
      const plan = planFor(cfg, target, budgetBytes, hostBytes);
      const rate = plan.host && target.peak ? hostAdamWRate({ given: opts.hostAdamwRate === undefined ? undefined : opts.hostAdamwRate * 1e6 }) : null;
      const stepTime = estimateStepTime(plan, target, rate);
      console.log(opts.json ? JSON.stringify({ ...plan, stepTime }, null, 2) : formatPlan(plan, stepTime));
      return planRefuses(plan) ? EXIT.badInput : EXIT.done;
    }
    const r = await withDashboard(opts.ui, opts.uiHost, cfg.logging.dir, (observer) =>
      runTraining(cfg, {
        resume: !!opts.resume,
        resumeFrom: opts.resumeFrom,
        allowConfigChange: allowList(opts.allowConfigChange),
        overwrite: !!opts.overwrite,
        target,
        budgetBytes,
        hostBytes,
        cwd,
        stopAfter: opts.stopAfter,
        profile: !!opts.profile,
        observer,
      }),
    );
    const { line, code } = formatOutcome(r, (p) => shownPath(p, cwd), cfg.schedule.steps, opts.stopAfter);
    console.log(line);
    return code;
  } catch (e: unknown) {
    // The one table (src/util/cli-errors.ts): `stopped: ...` for a run that stopped, `error: ...` for the rest, a stack only for a bug.
    return reportCliError(e, 'train.js');
  }
}
