/** Facts about processes on this machine, for stale-lock and dead-writer detection. */
import { readFileSync } from 'node:fs';

/** Whether a process with this pid exists here (EPERM: it exists but belongs to another user). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Linux's id of this boot: a pid recorded before a reboot names another process now. Null elsewhere. */
export function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}
