/**
 * Command-line interface of forecast.js. Exit codes (the one table, src/util/cli-errors.ts): 0 done;
 * 2 bad input or setup (flags, model source, data, config mismatch, an output that is the run or
 * inside it or cannot be written, no GPU adapter): the message names the problem and the fix, and
 * nothing is written; 3 the forecast is not finite (nothing written); 1 the disk or device failed.
 */
import { parseCommandLine } from '../train/cli/parse.ts';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { injectCliFault, reportCliError } from '../util/cli-errors.ts';
import { runForecast } from './run.ts';

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive integer, got "${v}"`);
    return n;
  };
}

function fraction(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`expected a number in [0, 1), got "${v}"`);
  return n;
}

const OptionsSchema = z
  .object({
    checkpoint: z.string().min(1),
    data: z.string().min(1).optional(),
    column: z.string().min(1).optional(),
    timeColumn: z.string().min(1).optional(),
    idColumn: z.string().min(1).optional(),
    field: z.string().min(1).optional(),
    horizon: z.number().int().positive().optional(),
    context: z.number().int().positive().optional(),
    out: z.string().min(1).optional(),
    evaluate: z.boolean().default(false),
    season: z.number().int().positive().optional(),
    validFraction: z.number().min(0).lt(1).optional(),
    stride: z.number().int().positive().optional(),
    batch: z.number().int().positive().default(32),
  })
  .strict();

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('forecast.js')
    .description('webgpu-moe: forecast with a trained checkpoint or a Hugging Face Time-MoE folder; --evaluate compares it with baselines on the held-out tail')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory, run directory (runs/<name>) or Hugging Face Time-MoE folder')
    .option('--data <source>', "data set name (e.g. sensor-temperature) or a .csv / .tsv / .json / .jsonl file (default: the checkpoint's training data)")
    .option('--column <name|index>', 'CSV value column')
    .option('--time-column <name|index>', 'CSV column rows are sorted by')
    .option('--id-column <name|index>', 'CSV column naming the series (long format)')
    .option('--field <key>', 'JSON / JSONL key holding the numbers')
    .option('--horizon <H>', "points to forecast (default: the model's longest head; longer ones are autoregressive)", positiveInt('--horizon'))
    .option('--context <T>', "context length (default: the checkpoint's data.contextLength)", positiveInt('--context'))
    .option('--out <dir>', 'output folder (default: <run dir>/forecast, or ./forecast); never the run being read or inside it, and replaced as a whole')
    .option('--evaluate', 'MSE / MAE per horizon on the held-out tail, beside naive, seasonal naive, drift and window-mean baselines')
    .option('--season <m>', 'seasonal period for the seasonal-naive baseline (default: detected per series)', positiveInt('--season'))
    .option('--valid-fraction <f>', "held-out fraction of each series (default: the checkpoint's data.validFraction)", fraction)
    .option('--stride <n>', "step between held-out windows (default: the checkpoint's data.stride, else context / 2)", positiveInt('--stride'))
    .option('--batch <n>', 'sequences per forward pass', positiveInt('--batch'), 32)
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 the disk or device failed, 2 bad input (nothing written), 3 the forecast is not finite (nothing written), 70 a bug.',
    );
  const parseExit = parseCommandLine(program, argv);
  if (parseExit !== null) return parseExit;
  const parsed = OptionsSchema.safeParse(program.opts());
  if (!parsed.success) {
    console.error(`error: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return 2;
  }
  try {
    injectCliFault('forecast.js');
    const r = await runForecast({ ...parsed.data, cwd: process.cwd() });
    console.error(r.dataReport);
    console.log(r.summary);
    return 0;
  } catch (e) {
    return reportCliError(e, 'forecast.js');
  }
}
