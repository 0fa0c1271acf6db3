/**
 * Command-line interface of train.js. Exit codes: 0 ok, 1 runtime failure (e.g. a run stopped by
 * the non-finite guard), 2 bad input or setup (config, data, checkpoint, flags, no GPU adapter),
 * 130 interrupted (a checkpoint was saved).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { GpuError } from '../kernels/errors.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DataError } from './data/errors.ts';
import { CheckpointError } from './checkpoint.ts';
import { RunStopped, planFor, runTraining } from './run.ts';
import { formatPlan } from './planner-format.ts';
import { runSmoke } from './smoke.ts';
import { UiError } from '../ui/errors.ts';
import { startLiveDashboard, withLiveDashboard } from '../ui/live.ts';

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

interface CliOptions {
  config?: string;
  set: string[];
  resume?: boolean;
  plan?: boolean;
  budgetGb: number;
  smoke?: boolean;
  stopAfter?: number;
  profile?: boolean;
  ui?: string | true;
  uiHost?: string;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('train.js')
    .description('webgpu-moe: train Time-MoE-style Mixture-of-Experts models on WebGPU')
    .option('-c, --config <file>', 'training config JSON (e.g. small-moe.json)')
    .option('-s, --set <path=value>', 'override a config value, e.g. --set optim.lr=3e-4 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--resume', 'continue from the latest checkpoint in <logging.dir>/checkpoints')
    .option('--plan', 'print the memory plan for the config and exit')
    .option('--stop-after <step>', 'save a checkpoint and exit after this optimizer step (continue later with --resume)', positiveInt)
    .option('--budget-gb <GiB>', 'device memory budget for the plan check', positiveNumber, 24)
    .option('--profile', 'time every GPU kernel of the training steps (timestamp queries); print a table by op type and write <logging.dir>/profile.json')
    .option('--smoke', 'run a short GPU smoke job (device, kernels, readback) and exit')
    .option('--ui [port]', 'serve a live dashboard of the run on 127.0.0.1 and print its URL (default port 8080; 0 picks a free one)')
    .option('--ui-host <address>', 'listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0: anyone who can reach the machine sees the run)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const opts = program.opts<CliOptions>();
  try {
    if (opts.smoke) {
      await runSmoke();
      return 0;
    }
    if (!opts.config) {
      console.error('error: --config <file> is required (try: node train.js --config small-moe.json)');
      return 2;
    }
    const cfg = loadConfig(opts.config, opts.set);
    const budgetBytes = opts.budgetGb * GiB;
    if (opts.plan) {
      const plan = planFor(cfg, budgetBytes);
      console.log(formatPlan(plan));
      return plan.fits ? 0 : 1;
    }
    const ui = await startLiveDashboard({ ui: opts.ui, uiHost: opts.uiHost }, cfg.logging.dir);
    const r = await withLiveDashboard(ui, (observer) => runTraining(cfg, { resume: !!opts.resume, budgetBytes, cwd: process.cwd(), stopAfter: opts.stopAfter, profile: !!opts.profile, observer }));
    const before = r.validBefore ? `${r.validBefore.loss.toFixed(4)} -> ` : '';
    console.log(`${r.stopped ? 'stopped' : 'done'}: ${r.steps} steps${skippedNote(r.skippedSteps, r.overflowSteps)}; validation loss ${before}${r.validAfter.loss.toFixed(4)}; metrics in ${cfg.logging.dir}/metrics.jsonl`);
    return 0;
  } catch (e: unknown) {
    if (e instanceof ConfigError || e instanceof DataError || e instanceof CheckpointError || e instanceof UiError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof RunStopped) {
      console.error(`error: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof GpuError) {
      console.error(`error: ${e.message}`);
      return e.kind === 'no-adapter' ? 2 : 1;
    }
    throw e;
  }
}

/** " (3 skipped by the guards, 5 loss-scale overflows)" or "" when nothing was skipped. */
function skippedNote(skipped: number, overflows: number): string {
  const guards = skipped - overflows;
  const parts = [guards ? `${guards} skipped by the guards` : '', overflows ? `${overflows} skipped for loss-scale overflow` : ''].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}
