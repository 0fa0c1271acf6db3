/**
 * The one error boundary of every command (train.js, forecast.js, export.js, dashboard.js,
 * diagnose.js, experiments/run.js, bench/run.js): the exit codes, and the one table from an error's
 * class to how it is printed and the code it exits with (docs/RELIABILITY.md, "Exit codes").
 *
 *   reportCliError(e)  inside each command's main(): prints a known error as `error: <message>`
 *                      (no stack trace) and returns its exit code; an unknown one is a bug.
 *   runCli(load, argv) what the root .js files call: loads the command, runs its main(), and
 *                      catches whatever escapes it (an import that fails, an error thrown from a
 *                      callback) with the same table.
 *
 * src/util is the lowest layer, so the table names the classes of the layers above by their
 * `name` (each sets it in its constructor; test/reliability/io-boundary.test.ts checks every row
 * against the real class). A bug, and only a bug, prints a stack trace: `error: internal error ...
 * (a bug in webgpu-moe ...)` then the stack, exit 70 (EX_SOFTWARE, distinct from every other code).
 */
import { IoError, isErrno, isPathCode } from './atomic-write.ts';

/**
 * The exit codes of every command. Scripts and schedulers branch on them, so each outcome has
 * exactly one code (diagnose.js: 1 also means "diagnosed with findings", docs/FINDINGS.md).
 */
export const EXIT = {
  /** The run finished (or stopped where --stop-after asked), the plan fits, the file was written. */
  done: 0,
  /** Stopped by its environment: K consecutive non-finite steps, an I/O failure (disk full, I/O error), a GPU failure. */
  stopped: 1,
  /** Bad input: config, data, checkpoint, flags, an output path that cannot be used, no GPU adapter, a plan that does not fit. Nothing saved was touched. */
  badInput: 2,
  /** Diverged: the validation loss (train.js) or the forecast (forecast.js) is not finite, or the loss exploded. */
  diverged: 3,
  /** A bug in webgpu-moe (an error no row of the table knows): the only exit that prints a stack trace. 70 = EX_SOFTWARE (sysexits.h). */
  bug: 70,
  /** SIGHUP (the terminal closed, an ssh session dropped): handled like SIGTERM. 128 + 1. */
  sighup: 129,
  /** SIGINT (Ctrl-C): the step was finished and a checkpoint saved first. 128 + 2, the shell convention. */
  sigint: 130,
  /** SIGQUIT (Ctrl-\): handled like SIGTERM (no core dump). 128 + 3. */
  sigquit: 131,
  /** SIGTERM (Slurm, Kubernetes, systemd): handled like SIGINT. 128 + 15. */
  sigterm: 143,
} as const;

export interface ErrorRow {
  /** The error class's `name`. */
  name: string;
  /** Its exit code (a function when it depends on the error). */
  exit: number | ((e: Error) => number);
  /** `stopped: ` lines go to stdout (the line that says how a run ended); everything else is `error: ` on stderr. */
  prefix: 'error' | 'stopped';
  /** Where the class lives, and when it is thrown (for the docs and the table's test). */
  what: string;
}

/** A class whose every error is the user's input to fix: exit 2, `error: `. */
const badInput = (name: string, what: string): ErrorRow => ({ name, exit: EXIT.badInput, prefix: 'error', what });

/** The table. Order does not matter: names are unique. */
export const ERROR_TABLE: readonly ErrorRow[] = [
  {
    name: 'IoError',
    exit: (e) => (isPathCode((e as IoError).code) ? EXIT.badInput : EXIT.stopped),
    prefix: 'error',
    what: 'src/util/atomic-write.ts: a file-system operation refused. 2 when the path cannot be written (read-only, permission, a file in the way, symlink loop), 1 when the environment failed (disk full, I/O error)',
  },
  badInput('OutputPathError', 'src/util/output-path.ts: an output that is an input run, inside one or holds one'),
  badInput('ConfigError', 'src/train/config.ts: a config value, a flag, a plan that does not fit'),
  badInput('DataError', 'src/train/data/errors.ts: a data file, a cell, a data config value'),
  badInput(
    'CheckpointError',
    'src/train/persist/safetensors.ts: a checkpoint or model folder that cannot be used (missing, damaged, checksum, non-finite weights)',
  ),
  badInput('HfConfigError', 'src/train/interop/hf-config.ts: a config.json or model with no Time-MoE equivalent'),
  badInput('RunFolderError', 'src/train/run/run-dir.ts: a run folder in use, holding a run, or not creatable'),
  badInput('UiError', 'src/ui/errors.ts: a dashboard flag, run folder or port'),
  badInput('ForecastError', 'src/forecast/errors.ts: a forecast.js flag or a model that cannot forecast this data'),
  {
    name: 'NonFiniteForecastError',
    exit: EXIT.diverged,
    prefix: 'error',
    what: "src/forecast/errors.ts: the model's forecast is not finite (nothing written)",
  },
  badInput('DiagnoseInputError', 'src/diagnose/cli.ts: a run folder diagnose.js cannot read'),
  {
    name: 'GpuError',
    exit: (e) => ((e as Error & { kind?: string }).kind === 'no-adapter' ? EXIT.badInput : EXIT.stopped),
    prefix: 'error',
    what: 'src/kernels/errors.ts: no adapter (2), or the device failed (1)',
  },
  {
    name: 'ExperimentError',
    exit: (e) => (e as Error & { exitCode: number }).exitCode,
    prefix: 'error',
    what: "experiments/runner.ts: an experiment's train.js failed (1), or --report-only found no run (2)",
  },
  {
    name: 'RunStopped',
    exit: (e) => (e as Error & { exitCode: number }).exitCode,
    prefix: 'stopped',
    what: 'src/train/run/session.ts: a training run stopped (bad steps, signal, I/O failure mid-run); its own code',
  },
];

const BY_NAME = new Map(ERROR_TABLE.map((r) => [r.name, r]));

/**
 * The row of an error: its own class's, else the nearest base class's (a NewerCheckpointError is a
 * CheckpointError). Matched by name along the prototype chain: util cannot import the classes.
 */
function rowOf(err: Error): ErrorRow | undefined {
  for (let p: object | null = err; p && p !== Error.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const name = (p as { constructor?: { name?: string } }).constructor?.name;
    const row = (p === err ? BY_NAME.get(err.name) : undefined) ?? (name ? BY_NAME.get(name) : undefined);
    if (row) return row;
  }
  return undefined;
}

/** Node's syscall names as the verb of "cannot <action> <path>". */
const SYSCALL_ACTION: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove',
  rm: 'remove',
  scandir: 'list',
  stat: 'read',
  lstat: 'read',
  access: 'write to',
  realpath: 'resolve',
  copyfile: 'copy',
  symlink: 'create',
};

/**
 * An errno error nothing wrapped (a raw ENOENT from some fs call) as an IoError, so it is reported
 * like every other I/O error instead of as a bug; null when it names no path.
 */
function fromRawErrno(e: NodeJS.ErrnoException): IoError | null {
  if (!e.path) return null;
  return new IoError(e.path, e.code!, SYSCALL_ACTION[e.syscall ?? ''] ?? `${e.syscall ?? 'use'}`);
}

export interface Printer {
  out: (line: string) => void;
  err: (line: string) => void;
}

const STD: Printer = { out: (s) => console.log(s), err: (s) => console.error(s) };

/** How `e` is printed and the code it exits with, by the table (a bug when no row knows it). */
export function describeCliError(e: unknown, command = 'webgpu-moe'): { code: number; stream: 'out' | 'err'; text: string } {
  let err = e;
  if (isErrno(err) && !(err instanceof IoError)) err = fromRawErrno(err) ?? err;
  if (err instanceof Error) {
    const row = rowOf(err);
    if (row) {
      const code = typeof row.exit === 'function' ? row.exit(err) : row.exit;
      const text = err instanceof IoError ? `${err.message}. ${err.fix}` : err.message;
      return { code, stream: row.prefix === 'stopped' ? 'out' : 'err', text: `${row.prefix}: ${text}` };
    }
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const stack = err instanceof Error && err.stack ? `\n${err.stack}` : '';
  return {
    code: EXIT.bug,
    stream: 'err',
    text: `error: internal error in ${command} (a bug in webgpu-moe, not a problem with your input or files; please report it with the lines below, exit ${EXIT.bug}): ${message}${stack}`,
  };
}

/** Print `e` by the table and return its exit code (each command's main() ends its catch with this). */
export function reportCliError(e: unknown, command?: string, print: Printer = STD): number {
  const d = describeCliError(e, command);
  (d.stream === 'out' ? print.out : print.err)(d.text);
  return d.code;
}

/**
 * Run a command's main() under the boundary: the root .js files' one line. Errors that escape main
 * (its module fails to load, a callback throws after main returned) are printed by the same table.
 */
export async function runCli(command: string, load: () => Promise<{ main: (argv: string[]) => Promise<number> }>, argv: string[]): Promise<number> {
  const escaped = (e: unknown) => {
    process.exitCode = reportCliError(e, command);
    // The process may be in any state after an error escaped: end it with that code.
    process.exit();
  };
  process.on('uncaughtException', escaped);
  process.on('unhandledRejection', escaped);
  try {
    const { main } = await load();
    return await main(argv);
  } catch (e) {
    return reportCliError(e, command);
  }
}

/**
 * Test-only: `WEBGPU_MOE_CLI_FAULT=<bug|escape|E...>` makes a command fail on purpose right after
 * its flags are parsed, so the tests can check that every command prints the same shape and exit
 * code: `bug` throws an error no row knows (exit 70, with a stack), `escape` throws from a callback
 * after main returned (caught by runCli), an errno code (ENOSPC, EROFS, ELOOP, ...) throws it as Node
 * would from a write to /injected/<command>. Unset in normal use.
 */
export function injectCliFault(command: string): void {
  const f = process.env.WEBGPU_MOE_CLI_FAULT;
  if (!f) return;
  if (f === 'bug') throw new TypeError(`injected by WEBGPU_MOE_CLI_FAULT in ${command}`);
  if (f === 'escape') {
    setImmediate(() => {
      throw new RangeError(`injected by WEBGPU_MOE_CLI_FAULT in a callback of ${command}`);
    });
    return;
  }
  if (/^E[A-Z]+$/.test(f)) {
    const e = new Error(`${f}: injected by WEBGPU_MOE_CLI_FAULT, write '/injected/${command}'`) as NodeJS.ErrnoException;
    e.code = f;
    e.syscall = 'write';
    e.path = `/injected/${command}`;
    throw e;
  }
  throw new TypeError(`WEBGPU_MOE_CLI_FAULT: "${f}": expected bug, escape or an errno code such as ENOSPC (a test-only setting: unset it)`);
}
