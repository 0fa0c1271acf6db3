/**
 * The dashboard's address flags, shared by `train.js --ui [port] --ui-host <host>` and
 * `dashboard.js --port --host`. Loopback by default: a training run's metrics and config are
 * nobody else's business, so any other address has to be asked for by name.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { UiError } from './errors.ts';

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';

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

export function parsePort(flag: string, value: unknown): number {
  const r = port.safeParse(value === true ? String(DEFAULT_PORT) : value);
  return r.success ? r.data : fail(flag, value, r.error);
}

export function parseHost(flag: string, value: unknown): string {
  if (value === undefined) return DEFAULT_HOST;
  const r = host.safeParse(value);
  return r.success ? r.data : fail(flag, value, r.error);
}

/** A loopback address: the server then also refuses requests naming any other host (DNS rebinding). */
export function isLoopback(h: string): boolean {
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
