/**
 * Issue 23: a run folder on a read-only file system (EROFS) is named as such when the run takes
 * its lock (its first write), as bad input (exit 2) with the fix, not as an I/O failure that
 * says to free space. Injected at the lock (WEBGPU_MOE_FAULT=EROFS@lock), and, as root, on a real
 * read-only tmpfs: a folder that exists there, and one that would have to be created there.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, scratch, tinyConfig, writeConfig } from '../train/cli-helpers.ts';

const STACK = /^\s{4}at /m;

describe('the run folder on a read-only file system', () => {
  it('EROFS writing the lock (injected): exit 2, "read-only file system" and the fix, nothing left behind', async () => {
    const d = scratch();
    const r = await runCli(d, ['--config', writeConfig(d, tinyConfig())], { WEBGPU_MOE_FAULT: 'EROFS@lock' });
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: logging\.dir runs\/t is on a read-only file system \(EROFS writing the run lock runs\/t\/lock\): a run writes its lock, metrics and checkpoints there\. Nothing was written\. Set logging\.dir to a folder on a writable disk \(--set logging\.dir=\.\.\.\), or remount it read-write; to continue a run saved there, copy its folder to a writable disk and --resume from the copy$/m,
    );
    expect(r.stderr).not.toMatch(/free space|no space/);
    expect(r.stdout + r.stderr).not.toMatch(STACK);
    expect(existsSync(join(d, 'runs'))).toBe(false);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'a real read-only tmpfs (root): an existing run folder and one to create are both named read-only; the saved run is untouched',
    async (ctx) => {
      const mnt = mkdtempSync(join(tmpdir(), 'wmoe-ro-'));
      if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]).status !== 0) return ctx.skip();
      try {
        // A run saved there, then the disk made read-only (a backup mount, a full-disk remount).
        const d = scratch();
        const p = writeConfig(d, tinyConfig({ logging: { dir: join(mnt, 'run'), validEvery: 0, validBatches: 2, progress: 'plain' } }));
        expect((await runCli(d, ['--config', p])).status).toBe(0);
        const before = readFileSync(join(mnt, 'run/metrics.jsonl'), 'utf8');
        const files = readdirSync(join(mnt, 'run/checkpoints')).sort();
        expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);

        for (const args of [['--resume'], ['--overwrite']]) {
          const r = await runCli(d, ['--config', p, ...args]);
          expect(r.status, r.stdout + r.stderr).toBe(2);
          expect(r.stderr).toContain(
            `error: logging.dir ${join(mnt, 'run')} is on a read-only file system (EROFS writing the run lock ${join(mnt, 'run/lock')})`,
          );
          expect(r.stdout + r.stderr).not.toMatch(STACK);
        }
        expect(readFileSync(join(mnt, 'run/metrics.jsonl'), 'utf8')).toBe(before);
        expect(readdirSync(join(mnt, 'run/checkpoints')).sort()).toEqual(files);

        const fresh = await runCli(d, ['--config', p, '--set', `logging.dir=${join(mnt, 'new/run')}`]);
        expect(fresh.status, fresh.stdout + fresh.stderr).toBe(2);
        expect(fresh.stderr).toContain(
          `error: logging.dir ${join(mnt, 'new/run')} cannot be created (EROFS: read-only file system). Set logging.dir to a folder you can write`,
        );
      } finally {
        spawnSync('umount', [mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    },
  );
});
