/**
 * `train.js --ui [port]`: a dashboard served from the training process itself. The run's
 * MetricsLog hands every record to `observer` in memory (src/ui/observer.ts); nothing here reads
 * the disk per step, and nothing here may throw into the run: a dashboard fault is printed once.
 */
import { exposureWarning, parseAddress, type FlagNames } from './flags.ts';
import { parseHeader } from './header.ts';
import { Hub } from './hub.ts';
import type { MetricsObserver, RunHeader } from './observer.ts';
import type { RunStatus } from './protocol.ts';
import { serve } from './server.ts';

export interface LiveDashboard {
  url: string;
  observer: MetricsObserver;
  /** Tell the page how the run ended, then close the server (the page keeps what it has). */
  finish(status: RunStatus, message?: string): Promise<void>;
}

const FLAGS: FlagNames = { port: '--ui', host: '--ui-host' };

/**
 * Start the dashboard of the run logging to `dir` (its logging.dir) and print its URL. `ui` is
 * commander's value of `--ui [port]` (true without a port). Throws a UiError on bad flags or a
 * port in use, before the run has touched anything.
 */
export async function startLiveDashboard(ui: string | true, uiHost: string | undefined, dir: string): Promise<LiveDashboard> {
  const address = parseAddress(FLAGS, ui, uiHost);
  const hub = new Hub();
  const run = hub.addRun(dir, dir, true);
  hub.status(run, 'running');
  const server = await serve({ address, hub, flags: FLAGS });
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
  const exposed = exposureWarning(FLAGS, server.address, "this run's config and metrics");
  if (exposed) console.error(`[ui] ${exposed}`);
  return {
    url: server.url,
    observer,
    async finish(status, message) {
      hub.status(run, status, message);
      await server.close();
    },
  };
}

/**
 * Run `run` under a live dashboard (none when `dashboard` is null); the page learns how it ended:
 * `ended` names the status of a result, `failed` that of an error (which is rethrown).
 */
export async function withLiveDashboard<T>(
  dashboard: LiveDashboard | null,
  run: (observer?: MetricsObserver) => Promise<T>,
  ended: (r: T) => RunStatus,
  failed: (e: unknown) => RunStatus,
): Promise<T> {
  if (!dashboard) return run();
  let r: T;
  try {
    r = await run(dashboard.observer);
  } catch (e) {
    await dashboard.finish(failed(e), e instanceof Error ? e.message : String(e));
    throw e;
  }
  await dashboard.finish(ended(r));
  return r;
}
