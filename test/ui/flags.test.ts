/**
 * Where the dashboard listens: 127.0.0.1 unless --ui-host names another address (checked on the
 * socket: the loopback-only server refuses a connection to 127.0.0.2, the 0.0.0.0 one answers it),
 * and bad --ui / --ui-host values are bad input (exit 2) before the run writes anything.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/train/cli/train.ts';
import { UiError } from '../../src/ui/errors.ts';
import { parseAddress } from '../../src/ui/flags.ts';
import { startLiveDashboard, type LiveDashboard } from '../../src/ui/live.ts';
import { REPO } from './helpers.ts';

const UI = { port: '--ui', host: '--ui-host' };

/** GET http://<ip>:<port>/ naming that host: the status, or the socket error's code. */
function reach(ip: string, port: number): Promise<number | string> {
  return new Promise((res) => {
    get({ host: ip, port, path: '/', headers: { Host: `${ip}:${port}` } }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    }).on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
  });
}

describe('dashboard address flags', () => {
  it('parses ports and hosts, and names --ui-host when --ui names another address', () => {
    expect(parseAddress(UI, true, undefined)).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseAddress(UI, '0', undefined)).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseAddress(UI, 'localhost:9000', undefined)).toEqual({ host: 'localhost', port: 9000 });
    expect(parseAddress(UI, '9000', '0.0.0.0')).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(() => parseAddress(UI, '0.0.0.0:9000', undefined)).toThrow(/--ui 0\.0\.0\.0:9000: .*pass --ui 9000 --ui-host 0\.0\.0\.0/);
    expect(() => parseAddress(UI, 'abc', undefined)).toThrow(UiError);
    expect(() => parseAddress(UI, 'abc', undefined)).toThrow(/--ui "abc": expected a port number/);
    expect(() => parseAddress(UI, '70000', undefined)).toThrow(/--ui "70000": a port is 0\.\.65535/);
    expect(() => parseAddress(UI, '9000', 'http://0.0.0.0')).toThrow(/--ui-host "http:\/\/0\.0\.0\.0": expected an IP address or a host name/);
    expect(() => parseAddress(UI, '127.0.0.1:9000', '0.0.0.0')).toThrow(/both name an address/);
  });
});

describe('where the live dashboard listens', () => {
  let open: LiveDashboard[] = [];
  afterEach(async () => {
    await Promise.all(open.map((d) => d.finish('done')));
    open = [];
    vi.restoreAllMocks();
  });

  async function start(ui: string, host?: string): Promise<{ port: number; url: string }> {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const d = await startLiveDashboard(ui, host, 'runs/x');
    open.push(d);
    return { url: d.url, port: Number(new URL(d.url).port) };
  }

  it('binds 127.0.0.1 only by default', async () => {
    const d = await start('0');
    expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await reach('127.0.0.1', d.port)).toBe(200);
    // Another address of this machine (127.0.0.2 is on the loopback interface too) is not served.
    expect(await reach('127.0.0.2', d.port)).toBe('ECONNREFUSED');
  });

  it('binds another address only when --ui-host names it', async () => {
    const d = await start('0', '0.0.0.0');
    expect(d.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    expect(await reach('127.0.0.2', d.port)).toBe(200);
    expect(console.error).toHaveBeenCalledWith(expect.stringMatching(/listening on 0\.0\.0\.0: anyone who can reach it/));
  });
});

describe('train.js --ui flags', () => {
  afterEach(() => vi.restoreAllMocks());

  async function train(...args: string[]): Promise<{ code: number; err: string; dir: string }> {
    const dir = join(mkdtempSync(join(tmpdir(), 'wmoe-ui-flags-')), 'run');
    const err: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
    const code = await main(['--config', join(REPO, 'small-moe.json'), '--set', `logging.dir=${dir}`, ...args]);
    return { code, err: err.join('\n'), dir };
  }

  it('a bad port is bad input before the run folder exists', async () => {
    const r = await train('--ui', '99999');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--ui "99999": a port is 0\.\.65535/);
    expect(existsSync(r.dir)).toBe(false);
  });

  it('--ui-host without --ui, and --ui with --plan, are refused', async () => {
    const a = await train('--ui-host', '0.0.0.0');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--ui-host needs --ui/);
    const b = await train('--ui', '0', '--plan');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--ui shows a training run/);
  });
});
