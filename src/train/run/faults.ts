/**
 * Deterministic I/O fault injection for the CLI tests (disk full at one exact write, as the
 * checkpoint crash points in test/checkpoint/crash-writer.ts stop at one exact phase):
 *
 *   WEBGPU_MOE_FAULT=ENOSPC@checkpoint:step-6:optimizer.safetensors[,EIO@metrics.jsonl:train-4 ...]
 *
 * Sites: `checkpoint:<name>:<model.safetensors|optimizer.safetensors|state.json|latest>`,
 * `metrics.jsonl:<kind>-<step>`, `plan.txt`, `lock`. The error thrown is shaped like Node's own
 * (code, errno, syscall), so the real handling path runs. Unset in normal use.
 *
 * `DEVICE_LOST@step-<K>` is not an I/O error: the training loop destroys the GPU device
 * (DawnRuntime.loseDevice(), a real device loss to Dawn) just before recording step K (see deviceFault).
 */
import { z } from 'zod';
import { ConfigError } from '../config.ts';

const ERRNO = { ENOSPC: -28, EIO: -5, EROFS: -30, EACCES: -13 } as const;
const FaultSchema = z
  .string()
  .regex(
    /^(ENOSPC|EIO|EROFS|EACCES|DEVICE_LOST)@[\w.:=-]+$/,
    'expected <ENOSPC|EIO|EROFS|EACCES>@<site> or DEVICE_LOST@step-<K>, e.g. ENOSPC@checkpoint:step-6:model.safetensors',
  );
type FaultCode = keyof typeof ERRNO | 'DEVICE_LOST';

let parsed: Map<string, FaultCode> | null = null;

function faults(): Map<string, FaultCode> {
  if (parsed) return parsed;
  parsed = new Map();
  const raw = process.env.WEBGPU_MOE_FAULT;
  if (!raw) return parsed;
  for (const item of raw.split(',')) {
    const r = FaultSchema.safeParse(item.trim());
    if (!r.success) throw new ConfigError(`WEBGPU_MOE_FAULT: "${item}": ${r.error.issues[0]!.message} (a test-only setting: unset it for normal runs)`);
    const [code, site] = r.data.split('@') as [FaultCode, string];
    parsed.set(site, code);
  }
  return parsed;
}

/** Check WEBGPU_MOE_FAULT up front (a bad value is bad input, before anything runs). */
export function checkFaults(): void {
  faults();
}

/** The fault point `site` as a callback for the writers' `beforeWrite` hook (src/util/atomic-write.ts). */
export function faultAt(site: string): () => void {
  return () => injectFault(site);
}

/** Throw the injected error for this site, if one is set. */
export function injectFault(site: string): void {
  const code = faults().get(site);
  if (!code || code === 'DEVICE_LOST') return;
  const e = new Error(`${code}: injected by WEBGPU_MOE_FAULT at ${site}`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = ERRNO[code];
  e.syscall = 'write';
  throw e;
}

/** Whether WEBGPU_MOE_FAULT asks for the GPU device to be lost at this site (`DEVICE_LOST@step-<K>`). */
export function deviceFault(site: string): boolean {
  return faults().get(site) === 'DEVICE_LOST';
}
