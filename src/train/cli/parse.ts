/**
 * Commander parsing shared by the CLIs (train.js, forecast.js, export.js): errors and help go to
 * stderr and become exit codes instead of process.exit, so every entry ends through the same
 * exit-code table (exit-codes.ts).
 */
import { type Command, CommanderError } from 'commander';
import { EXIT } from '../exit-codes.ts';

/** Parse argv; null when parsed, else the exit code (0 after --help / --version, 2 for bad flags). */
export function parseCommandLine(program: Command, argv: readonly string[]): number | null {
  program.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse([...argv], { from: 'user' });
    return null;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.done : EXIT.badInput;
    throw e;
  }
}
