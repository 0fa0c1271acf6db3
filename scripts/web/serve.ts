/**
 * `npm run web [-- --port N]`: build the browser trainer (scripts/web/build.ts) and serve dist/web/
 * on http://127.0.0.1:N/ (default 8090; 0 picks a free port), printing the URL. WebGPU needs a
 * secure context: http://127.0.0.1 is one, a file:// or data: URL is not. Loopback only, and only
 * to requests naming a loopback host (as the dashboard, src/ui/server.ts). Errors exit through the
 * CLI table (src/util/cli-errors.ts).
 */
import { createServer, type IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UiError } from '../../src/ui/errors.ts';
import { isLoopback } from '../../src/ui/flags.ts';
import { runCli } from '../../src/util/cli-errors.ts';
import { buildWeb } from './build.ts';

const DEFAULT_PORT = 8090;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

function hostAllowed(req: IncomingMessage): boolean {
  const h = req.headers.host ?? '';
  return isLoopback(h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.split(':')[0]!);
}

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

/** Serve the files of `dir` (GET only, nothing outside it) on 127.0.0.1:`port`. */
export async function serveWeb(dir: string, port = DEFAULT_PORT): Promise<WebServer> {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      res.end(body);
    };
    if (!hostAllowed(req)) return send(403, 'text/plain', 'this page answers only to 127.0.0.1 / localhost\n');
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(root + sep)) return send(404, 'text/plain', 'not found\n');
    readFile(file).then(
      (body) => send(200, TYPES[extname(file)] ?? 'application/octet-stream', body),
      () => send(404, 'text/plain', 'not found\n'),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(
        new UiError(
          e.code === 'EADDRINUSE'
            ? `npm run web cannot listen on 127.0.0.1:${port}: the port is in use. Pick another with npm run web -- --port <port>, or --port 0 for a free one`
            : `npm run web cannot listen on 127.0.0.1:${port}: ${e.message}`,
        ),
      ),
    );
    server.listen(port, '127.0.0.1', ok);
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://127.0.0.1:${bound}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

async function main(argv: string[]): Promise<number> {
  const at = argv.indexOf('--port');
  const raw = at >= 0 ? argv[at + 1] : undefined;
  const port = raw === undefined ? DEFAULT_PORT : Number(raw);
  if (at >= 0 && !(raw !== undefined && /^\d+$/.test(raw) && port <= 65535))
    throw new UiError(`--port ${raw ?? ''}: expected a port number 0..65535 (0 picks a free one)`);
  const built = await buildWeb();
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.error(
    `[web] built ${built.out}: ${Object.entries(built.files)
      .map(([f, n]) => `${f} ${kib(n)}`)
      .join(', ')}`,
  );
  const s = await serveWeb(built.out, port);
  console.log(`[web] open ${s.url} in a browser with WebGPU (Chrome, Edge, Safari 26, Firefox 141); Ctrl-C stops the server`);
  await new Promise<never>(() => {});
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runCli('npm run web', async () => ({ main }), process.argv.slice(2));
}
