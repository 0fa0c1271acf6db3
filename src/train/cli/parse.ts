/**
 * Commander parsing shared by the CLIs (train.js, forecast.js, export.js, dashboard.js): errors and
 * help go to stderr and become exit codes instead of process.exit, so every entry ends through the
 * same exit-code table (exit-codes.ts).
 */
import { type Command, CommanderError } from 'commander';
import { EXIT } from '../exit-codes.ts';

/**
 * A stray word that was meant as an option's value: `train.js small-moe.json` is `--config
 * small-moe.json`, `forecast.js runs/x` is `--checkpoint runs/x`. The hint names the flag of the
 * command it was given to; null when the command has no such flag.
 */
export function strayHint(program: Command, strays: readonly string[]): string | null {
  const has = (flag: string) => program.options.some((o) => o.long === flag);
  const stray = strays[0];
  if (stray === undefined || stray.startsWith('-')) return null;
  const flag = has('--config') && /\.json$/i.test(stray) ? '--config' : has('--checkpoint') ? '--checkpoint' : null;
  if (!flag) return null;
  return `hint: ${program.name()} takes ${flag === '--config' ? 'the config file' : 'the checkpoint'} after ${flag}: ${program.name()} ${flag} ${stray}`;
}

/** Parse argv; null when parsed, else the exit code (0 after --help / --version, 2 for bad flags). */
export function parseCommandLine(program: Command, argv: readonly string[]): number | null {
  // Commander's error text is held back so a hint can follow its first line, before the help line.
  const held: string[] = [];
  program.exitOverride().configureOutput({ writeErr: (s) => void held.push(s) });
  try {
    program.parse([...argv], { from: 'user' });
    return null;
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.excessArguments' || e.code === 'commander.missingMandatoryOptionValue') {
      const hint = strayHint(program, program.args);
      if (hint) held.splice(1, 0, `${hint}\n`);
    }
    return e.exitCode === 0 ? EXIT.done : EXIT.badInput;
  } finally {
    for (const s of held) process.stderr.write(s);
    program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  }
}
