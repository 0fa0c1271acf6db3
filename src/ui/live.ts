/**
 * `train.js --ui [port]`: a dashboard served from the training process itself. The run's
 * MetricsLog hands every record to `observer` in memory (src/train/metrics.ts); nothing here reads
 * the disk per step, and nothing here may throw into the run: a dashboard fault is printed once.
 */
import type { MetricsObserver, RunHeader } from '../train/metrics.ts';
import { UiError } from './errors.ts';
import { parseHeader } from './header.ts';
import { parseHost, parsePort } from './flags.ts';
import { Hub } from './hub.ts';
import type { RunStatus } from './protocol.ts';
import { serve, type Dashboard } from './server.ts';

export interface LiveDashboard {
  url: string;
  observer: MetricsObserver;
  /** Tell the page how the run ended, then close the server (the page keeps what it has). */
  finish(status: RunStatus, message?: string): Promise<void>;
}

export interface LiveFlags {
  /** commander's value of `--ui [port]`: true without a port, undefined without the flag. */
  ui?: string | true;
  uiHost?: string;
}

/** Start the dashboard and print its URL; null without --ui. `dir` is the run's logging.dir. */
export async function startLiveDashboard(flags: LiveFlags, dir: string): Promise<LiveDashboard | null> {
  if (flags.ui === undefined) {
    if (flags.uiHost !== undefined) throw new UiError('--ui-host needs --ui (e.g. --ui 8080 --ui-host 0.0.0.0)');
    return null;
  }
  const address = { port: parsePort('--ui', flags.ui), host: parseHost('--ui-host', flags.uiHost) };
  const hub = new Hub();
  const run = hub.addRun(dir, dir, true);
  hub.status(run, 'running');
  const server: Dashboard = await serve({ address, hub, flags: { port: '--ui', host: '--ui-host' } });
  const warned = new Set<string>();
  const guard = (what: string, f: () => string | null | void) => {
    try {
      const problem = f();
      if (problem) throw new Error(problem);
    } catch (e) {
      const msg = `[ui] the dashboard could not show ${what}: ${e instanceof Error ? e.message : String(e)} (training goes on)`;
      if (!warned.has(msg)) console.error(msg);
      warned.add(msg);
    }
  };
  const observer: MetricsObserver = {
    history(records) {
      guard('the earlier steps', () => {
        hub.reset(run);
        for (const r of records) {
          const problem = hub.record(run, r);
          if (problem) return problem;
        }
      });
    },
    header(h: RunHeader) {
      guard('the run header', () => {
        const r = parseHeader(h);
        if ('error' in r) return r.error;
        hub.header(run, r.header);
      });
    },
    record(r) {
      guard(`a ${String(r.kind)} record`, () => hub.record(run, r));
    },
  };
  console.error(`[ui] dashboard at ${server.url} (live while the run goes; afterwards: node dashboard.js ${dir})`);
  return {
    url: server.url,
    observer,
    async finish(status, message) {
      hub.status(run, status, message);
      await server.close();
    },
  };
}

/** Serve `run` with a live dashboard when --ui was given; the page learns how the run ended. */
export async function withLiveDashboard<T extends { stopped?: boolean }>(ui: LiveDashboard | null, run: (observer?: MetricsObserver) => Promise<T>): Promise<T> {
  if (!ui) return run();
  try {
    const r = await run(ui.observer);
    await ui.finish(r.stopped ? 'stopped' : 'done');
    return r;
  } catch (e) {
    const exitCode = (e as { exitCode?: unknown }).exitCode;
    await ui.finish(exitCode === 130 ? 'interrupted' : 'failed', e instanceof Error ? e.message : String(e));
    throw e;
  }
}
