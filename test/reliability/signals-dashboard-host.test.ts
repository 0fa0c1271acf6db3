/**
 * Issue 23: `dashboard.js --host 0.0.0.0` warns that anyone who can reach the address sees the
 * runs, as `train.js --ui --ui-host` does: one warning (src/ui/flags.ts exposureWarning), both CLIs.
 * The dashboard closes on SIGTERM, SIGHUP or SIGQUIT with exit 0 (nothing to save), even right
 * after printing its URL.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exposureWarning } from '../../src/ui/flags.ts';
import { DASHBOARD_JS, REPO, startCli } from '../ui/helpers.ts';

const RUN = join(REPO, 'test/fixtures/report/fixed');
const STACK = /^\s{4}at /m;

describe('dashboard.js --host', () => {
  it('0.0.0.0: the URL, then the warning with the fix; SIGTERM closes it (exit 0)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'wmoe-dash-'));
    const s = await startCli(cwd, [DASHBOARD_JS, RUN, '--port', '0', '--host', '0.0.0.0']);
    const port = Number(new URL(s.url).port);
    await new Promise<void>((res) => {
      const poll = () => (/\n\[dashboard\] listening on/.test(s.stderr()) ? res() : setTimeout(poll, 20));
      poll();
    });
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
    expect(s.stderr()).toContain(
      `[dashboard] listening on 0.0.0.0: anyone who can reach it sees the config and metrics of this run (there is no password). To keep it on this machine, leave out --host; from another machine an SSH tunnel needs no open port: ssh -L ${port}:127.0.0.1:${port} <this host>\n`,
    );
    expect(s.stderr()).not.toMatch(STACK);
  });

  it.each(['SIGTERM', 'SIGHUP', 'SIGQUIT'] as const)('the default (127.0.0.1): no warning; %s right after the URL closes it (exit 0)', async (sig) => {
    const cwd = mkdtempSync(join(tmpdir(), 'wmoe-dash-'));
    const s = await startCli(cwd, [DASHBOARD_JS, RUN, '--port', '0']);
    const end = new Promise<[number | null, string | null]>((res) => s.child.on('exit', (code, signal) => res([code, signal])));
    s.child.kill(sig);
    expect(await end).toEqual([0, null]); // before: killed by the signal (its handler came after the URL line)
    expect(s.stderr()).not.toMatch(/listening on|anyone who can reach/);
    expect(s.stderr()).not.toMatch(STACK);
  });

  it("one warning for both CLIs, naming each one's flag; none on loopback", () => {
    const at = { host: '0.0.0.0', port: 8080 };
    expect(exposureWarning({ port: '--ui', host: '--ui-host' }, at, "this run's config and metrics")).toMatch(
      /^listening on 0\.0\.0\.0: anyone who can reach it sees this run's config and metrics \(there is no password\)\. To keep it on this machine, leave out --ui-host; .*ssh -L 8080:127\.0\.0\.1:8080/,
    );
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(exposureWarning({ port: '--port', host: '--host' }, { host, port: 1 }, 'x')).toBeNull();
    expect(exposureWarning({ port: '--port', host: '--host' }, { host: '192.168.1.20', port: 1 }, 'x')).toMatch(/^listening on 192\.168\.1\.20/);
  });
});
