/**
 * The dashboard's address flags, shared by `train.js --ui [port] --ui-host <address>` and
 * `dashboard.js --port <port> --host <address>`. Loopback by default: a training run's metrics and
 * config are nobody else's business, so any other address has to be asked for with the host flag.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { UiError } from './errors.ts';

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';

/** How a CLI spells its two flags, for messages: '--ui' / '--ui-host' or '--port' / '--host'. */
export interface FlagNames {
  port: string;
  host: string;
}

const port = z
  .string()
  .regex(/^\d{1,5}$/, { error: 'expected a port number, e.g. 8080 (0 picks a free one)' })
  .transform(Number)
  .pipe(z.number().max(65535, { error: 'a port is 0..65535 (0 picks a free one)' }));

// An IP address or a host name (RFC 1123 labels); a URL or "host:port" is a common slip, named below.
const host = z
  .string()
  .min(1, { error: 'expected an address' })
  .refine((h) => isIP(h) !== 0 || /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(h), {
    error: 'expected an IP address or a host name (no scheme, no port), e.g. 0.0.0.0 or 192.168.1.20',
  });

export interface Address {
  host: string;
  port: number;
}

function fail(flag: string, value: unknown, error: z.ZodError): never {
  throw new UiError(`${flag} ${JSON.stringify(value)}: ${error.issues.map((i) => i.message).join('; ')}`);
}

/** A loopback address: the server then also refuses requests naming any other host (DNS rebinding). */
export function isLoopback(h: string): boolean {
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The warning both CLIs print when the dashboard listens beyond this machine (`train.js --ui-host`,
 * `dashboard.js --host`), or null on a loopback address. `what` is what a visitor sees.
 */
export function exposureWarning(flags: FlagNames, address: Address, what: string): string | null {
  if (isLoopback(address.host)) return null;
  return (
    `listening on ${address.host}: anyone who can reach it sees ${what} (there is no password). ` +
    `To keep it on this machine, leave out ${flags.host}; from another machine an SSH tunnel needs no open port: ssh -L ${address.port}:127.0.0.1:${address.port} <this host>`
  );
}

/**
 * The port flag's value: a port, or `host:port` / a bare address with a loopback host. Another
 * host there is refused, naming the host flag: serving beyond this machine is asked for by name.
 * `true` is the flag without a value (commander's `--ui [port]`).
 */
export function parsePort(flags: FlagNames, value: string | true): { port: number; host?: string } {
  if (value === true) return { port: DEFAULT_PORT };
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(value);
  const named = m ? m[1]! : isIP(value) !== 0 || value === 'localhost' ? value : null;
  if (named !== null) {
    if (!isLoopback(named)) {
      const p = m ? m[2]! : String(DEFAULT_PORT);
      throw new UiError(
        `${flags.port} ${value}: the dashboard listens on 127.0.0.1 unless another address is named with ${flags.host}. ` +
          `To serve ${named}, pass ${flags.port} ${p} ${flags.host} ${named} (anyone who can reach that address sees the run); ` +
          `from another machine an SSH tunnel needs neither: ssh -L ${p}:127.0.0.1:${p} <this host> (docs/DASHBOARD.md)`,
      );
    }
    const r = port.safeParse(m ? m[2]! : String(DEFAULT_PORT));
    return r.success ? { port: r.data, host: named } : fail(flags.port, value, r.error);
  }
  const r = port.safeParse(value);
  return r.success ? { port: r.data } : fail(flags.port, value, r.error);
}

export function parseHost(flag: string, value: string | undefined): string {
  if (value === undefined) return DEFAULT_HOST;
  const r = host.safeParse(value);
  return r.success ? r.data : fail(flag, value, r.error);
}

/** Both flags: the address to listen on. A host in the port flag and the host flag at once is refused. */
export function parseAddress(flags: FlagNames, portValue: string | true, hostValue: string | undefined): Address {
  const p = parsePort(flags, portValue);
  if (p.host !== undefined && hostValue !== undefined)
    throw new UiError(`${flags.port} ${String(portValue)} and ${flags.host} ${hostValue} both name an address: give the port alone to ${flags.port}`);
  return { port: p.port, host: p.host ?? parseHost(flags.host, hostValue) };
}
