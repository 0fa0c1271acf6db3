/**
 * `node dashboard.js <run folder> [<run folder> ...] [--port 8080] [--host 127.0.0.1]`: the live
 * dashboard's page for saved runs, several overlaid to compare them. Serves until Ctrl-C. Exit
 * codes: 0 closed by a signal, 2 bad input (a flag, a run folder, a port in use).
 */
import { Command, CommanderError } from 'commander';
import { UiError } from './errors.ts';
import { DEFAULT_PORT, parseHost, parsePort } from './flags.ts';
import { Hub } from './hub.ts';
import { loadRun } from './run-dir.ts';
import { serve } from './server.ts';

/** Labels for the runs as the user typed them, made unique when two folders share a name. */
function labels(args: readonly string[]): string[] {
  const base = args.map((a) => a.replace(/\/+$/, '') || a);
  return base.map((b, i) => (base.indexOf(b) !== i ? `${b} (${i + 1})` : b));
}

export async function main(argv: string[], signals: NodeJS.EventEmitter = process): Promise<number> {
  const program = new Command()
    .name('dashboard.js')
    .description('webgpu-moe: show saved training runs in the browser (several are overlaid)')
    .argument('<run...>', 'run folders train.js wrote (their logging.dir, holding metrics.jsonl), or metrics .jsonl files')
    .option('-p, --port <port>', `port to listen on (0 picks a free one)`, String(DEFAULT_PORT))
    .option('--host <address>', 'listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0: anyone who can reach the machine sees the runs)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const opts = program.opts<{ port: string; host?: string }>();
  try {
    const address = { port: parsePort('--port', opts.port), host: parseHost('--host', opts.host) };
    const hub = new Hub();
    const names = labels(program.args);
    program.args.forEach((arg, i) => loadRun(hub, arg, names[i]!));
    const server = await serve({ address, hub, flags: { port: '--port', host: '--host' } });
    console.error(`[dashboard] ${program.args.length} run${program.args.length > 1 ? 's' : ''} at ${server.url} (Ctrl-C to stop)`);
    await new Promise<void>((resolve) => {
      signals.once('SIGINT', resolve);
      signals.once('SIGTERM', resolve);
    });
    await server.close();
    return 0;
  } catch (e) {
    if (e instanceof UiError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
