/**
 * The dashboard's two ways in (the page and its server are src/ui/):
 * - `node dashboard.js <run folder> [<run folder> ...] [--port 8080] [--host 127.0.0.1]`: runs
 *   finished or in progress (their files are followed), several overlaid to compare them; serves
 *   until Ctrl-C (exit 0), bad input exits 2.
 * - `train.js --ui [port] [--ui-host <address>]`: withDashboard() runs the training under a live one.
 */
import { Command } from 'commander';
import { parseCommandLine } from './parse.ts';
import { injectCliFault, reportCliError } from '../../util/cli-errors.ts';
import { DEFAULT_PORT, exposureWarning, parseAddress } from '../../ui/flags.ts';
import { Hub } from '../../ui/hub.ts';
import { startLiveDashboard, withLiveDashboard } from '../../ui/live.ts';
import type { MetricsObserver } from '../../ui/observer.ts';
import type { RunStatus } from '../../ui/protocol.ts';
import { followRun } from '../../ui/saved-run.ts';
import { serve } from '../../ui/server.ts';
import { EXIT } from '../exit-codes.ts';
import { RunStopped, type RunResult } from '../run/run.ts';
import { isSignalExit, STOP_SIGNALS } from '../run/signals.ts';

/** Labels for the runs as the user typed them, made unique when two folders share a name. */
function labels(args: readonly string[]): string[] {
  const base = args.map((a) => a.replace(/\/+$/, '') || a);
  return base.map((b, i) => (base.indexOf(b) !== i ? `${b} (${i + 1})` : b));
}

export async function main(argv: string[], signals: NodeJS.EventEmitter = process): Promise<number> {
  const program = new Command()
    .name('dashboard.js')
    .description('webgpu-moe: show training runs in the browser, finished or in progress (followed as they log; several are overlaid); docs/DASHBOARD.md')
    .argument('<run...>', 'run folders train.js wrote (their logging.dir, holding metrics.jsonl), or metrics .jsonl files')
    .option('-p, --port <port>', `port to listen on (0 picks a free one)`, String(DEFAULT_PORT))
    .option('--host <address>', 'listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0: anyone who can reach the machine sees the runs)')
    .addHelpText('after', '\nExit codes: 0 closed by Ctrl-C / SIGTERM / SIGHUP / SIGQUIT, 2 bad input (a flag, a run folder, a port in use), 70 a bug.')
    .showHelpAfterError('(node dashboard.js --help lists every flag)');
  const parseExit = parseCommandLine(program, argv);
  if (parseExit !== null) return parseExit;
  const opts = program.opts<{ port: string; host?: string }>();
  try {
    injectCliFault('dashboard.js');
    const flags = { port: '--port', host: '--host' };
    const address = parseAddress(flags, opts.port, opts.host);
    const hub = new Hub();
    const names = labels(program.args);
    // Each run is followed: steps appended by a run in progress show up, and its state changes.
    const followed = program.args.map((arg, i) => followRun(hub, arg, names[i]!));
    const server = await serve({ address, hub, flags });
    // Listening for the stop signals before the URL is printed: a stop right after it closes cleanly.
    // Every stop signal closes it alike (SIGHUP: its terminal closed); it holds nothing to save.
    const stop = new Promise<void>((resolve) => {
      for (const sig of STOP_SIGNALS) signals.once(sig, resolve);
    });
    console.error(`[dashboard] ${program.args.length} run${program.args.length > 1 ? 's' : ''} at ${server.url} (following their files; Ctrl-C to stop)`);
    const exposed = exposureWarning(flags, server.address, `the config and metrics of ${program.args.length > 1 ? 'these runs' : 'this run'}`);
    if (exposed) console.error(`[dashboard] ${exposed}`);
    await stop;
    for (const f of followed) f.close();
    await server.close();
    return EXIT.done;
  } catch (e) {
    return reportCliError(e, 'dashboard.js');
  }
}

function ended(r: RunResult): RunStatus {
  return r.outcome === 'finished' ? 'done' : r.outcome;
}

function failed(e: unknown): RunStatus {
  return e instanceof RunStopped && isSignalExit(e.exitCode) ? 'interrupted' : 'failed';
}

/**
 * train.js: run the training under a live dashboard when --ui was given (`ui` undefined: none).
 * The server listens before the run's checks, so a port in use is bad input with nothing written.
 */
export async function withDashboard(
  ui: string | true | undefined,
  uiHost: string | undefined,
  dir: string,
  run: (observer?: MetricsObserver) => Promise<RunResult>,
): Promise<RunResult> {
  const dashboard = ui === undefined ? null : await startLiveDashboard(ui, uiHost, dir);
  return withLiveDashboard(dashboard, run, ended, failed);
}
