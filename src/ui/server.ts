/**
 * The dashboard's HTTP server (node:http, nothing else): the page and its bundle, the event log so
 * far (GET /api/snapshot, gzip when the browser takes it) and the events after it as server-sent
 * events (GET /api/events?since=N, resumed from Last-Event-ID when the browser reconnects).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { z } from 'zod';
import { pageAssets, type PageAssets } from './bundle.ts';
import { UiError } from './errors.ts';
import { isLoopback, type Address, type FlagNames } from './flags.ts';
import type { Hub } from './hub.ts';

const gzipAsync = promisify(gzip);

export interface Dashboard {
  url: string;
  address: Address;
  /** End every event stream and stop listening. */
  close(): Promise<void>;
}

const sinceParam = z.coerce.number().int().min(0);
// Long-lived streams through an SSH tunnel or a proxy stay open only while something flows.
const HEARTBEAT_MS = 15_000;

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...extra });
  res.end(body);
}

/** A Host header naming a loopback name, so a page from another origin cannot rebind a name onto us. */
function hostAllowed(req: IncomingMessage): boolean {
  const h = req.headers.host ?? '';
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.split(':')[0]!;
  return isLoopback(name);
}

function listenError(e: NodeJS.ErrnoException, addr: Address, portFlag: string, hostFlag: string): UiError {
  const where = `${addr.host}:${addr.port}`;
  if (e.code === 'EADDRINUSE')
    return new UiError(
      `the dashboard cannot listen on ${where}: the port is in use (another dashboard or server?). Pick another with ${portFlag} <port>, or ${portFlag} 0 for a free one`,
    );
  if (e.code === 'EACCES')
    return new UiError(
      `the dashboard cannot listen on ${where}: permission denied (ports below 1024 need root). Use ${portFlag} 8080, or ${portFlag} 0 for a free one`,
    );
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
    return new UiError(
      `the dashboard cannot listen on ${where}: this machine has no such address (${e.code}). Use ${hostFlag} 127.0.0.1 (the default), or one of this machine's own addresses`,
    );
  return new UiError(`the dashboard cannot listen on ${where}: ${e.message}`);
}

export interface ServeOptions {
  address: Address;
  hub: Hub;
  /** How the CLI spells the flags, for error messages. */
  flags: FlagNames;
}

export async function serve(opts: ServeOptions): Promise<Dashboard> {
  const { hub } = opts;
  const assets: PageAssets = await pageAssets();
  const loopback = isLoopback(opts.address.host);
  const streams = new Set<ServerResponse>();

  const events = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    // The browser's reconnect names the last event it got; a first connect names the snapshot's seq.
    const raw = req.headers['last-event-id'] ?? url.searchParams.get('since') ?? '0';
    const since = sinceParam.safeParse(raw);
    if (!since.success) return send(res, 400, 'text/plain', `since / Last-Event-ID must be a whole number >= 0, got ${JSON.stringify(raw)}\n`);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    let seq = since.data;
    for (const line of hub.since(seq)) res.write(`id: ${++seq}\ndata: ${line}\n\n`);
    const unsubscribe = hub.subscribe((n, line) => res.write(`id: ${n}\ndata: ${line}\n\n`));
    const beat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS).unref();
    streams.add(res);
    res.on('close', () => {
      unsubscribe();
      clearInterval(beat);
      streams.delete(res);
    });
  };

  const snapshot = async (req: IncomingMessage, res: ServerResponse) => {
    const lines = hub.since(0);
    const body = `${[...lines, JSON.stringify({ type: 'seq', seq: lines.length })].join('\n')}\n`;
    // zlib runs on the thread pool: a late page's big history does not hold up a training step.
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')))
      send(res, 200, 'application/x-ndjson', await gzipAsync(body), { 'Content-Encoding': 'gzip' });
    else send(res, 200, 'application/x-ndjson', body);
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (loopback && !hostAllowed(req)) return send(res, 403, 'text/plain', 'this dashboard answers only to 127.0.0.1 / localhost\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'GET only\n', { Allow: 'GET, HEAD' });
      const url = new URL(req.url ?? '/', 'http://dashboard');
      switch (url.pathname) {
        case '/':
          return send(res, 200, 'text/html; charset=utf-8', assets.html);
        case '/app.js':
          return send(res, 200, 'text/javascript; charset=utf-8', assets.js);
        case '/app.css':
          return send(res, 200, 'text/css; charset=utf-8', assets.css);
        case '/api/snapshot':
          return snapshot(req, res);
        case '/api/events':
          return events(req, res, url);
        case '/favicon.ico':
          res.writeHead(204).end();
          return;
        default:
          return send(res, 404, 'text/plain', `no such page: ${url.pathname}\n`);
      }
    })().catch((e: unknown) => {
      // A failed request must never reach the training run; answer it and go on.
      if (!res.headersSent) send(res, 500, 'text/plain', `${e instanceof Error ? e.message : String(e)}\n`);
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, opts.address, opts.flags.port, opts.flags.host)));
    server.listen(opts.address.port, opts.address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const address = { host: opts.address.host, port: bound.port };
  const shown = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${shown}:${address.port}/`,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of streams) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
