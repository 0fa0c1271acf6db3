/** Start the real CLIs (train.js --ui, dashboard.js) as a user would and read the URL they print. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const DASHBOARD_JS = resolve(REPO, 'dashboard.js');

export interface Started {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** Everything printed on stderr so far (grows while the process runs). */
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Spawn `node <args>` in `cwd` and wait for the "... at http://..." line. */
export function startCli(cwd: string, args: string[], timeoutMs = 60_000): Promise<Started> {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  let err = '';
  child.stdout.resume();
  const exit = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no dashboard URL within ${timeoutMs} ms:\n${err}`)), timeoutMs);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = err.match(/ at (http:\/\/\S+\/)/);
      if (m) {
        clearTimeout(timer);
        res({ child, url: m[1]!, stderr: () => err, exit });
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      rej(new Error(`exited with ${code} before printing a URL:\n${err}`));
    });
  });
}
