/** Command-line interface of train.js. Exit codes: 0 ok, 1 runtime failure, 2 bad input or setup. */
import { Command, CommanderError } from 'commander';
import { GpuError } from '../kernels/errors.ts';
import { runSmoke } from './smoke.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('train.js')
    .description('webgpu-moe: Mixture-of-Experts training on WebGPU')
    .option('--smoke', 'run a short GPU smoke job (device, kernels, readback) and exit')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const opts = program.opts<{ smoke?: boolean }>();
  try {
    if (opts.smoke) {
      await runSmoke();
      return 0;
    }
    program.outputHelp();
    return 2;
  } catch (e) {
    if (e instanceof GpuError) {
      console.error(`error: ${e.message}`);
      return e.kind === 'no-adapter' ? 2 : 1;
    }
    throw e;
  }
}
