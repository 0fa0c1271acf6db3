/**
 * I/O errors of forecast.js and export.js, on real file systems (docs/RELIABILITY.md, "I/O errors,
 * every command"): one message shape, `error: cannot <action> <path>: <reason> (<code>)[; detail].
 * <fix>`, and one rule for the exit code: 2 when the path cannot be written (a file in the way,
 * a symlink loop, a read-only disk, no permission: checked before any work, nothing written), 1 when
 * the environment fails while writing (disk full: nothing half-written left). Never a stack trace.
 * The read-only and full disks are real tmpfs mounts, and permission denied runs the command as
 * nobody (root only, as root passes permission checks; skipped elsewhere).
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FC_ARGS, canMount, expectNoStack, fixtureRun, leftovers, mountTmpfs, snapshot } from './io-helpers.ts';
import { node } from '../support/spawn.ts';

const COMMANDS = {
  'export.js': (out: string) => ['--checkpoint', 'runs/t', '--out', out],
  'forecast.js': (out: string) => ['--checkpoint', 'runs/t', ...FC_ARGS, '--out', out],
} as const;

describe('an output path that cannot be written: exit 2, before any work, nothing written', () => {
  it('a file as --out, a file in the way, a symlink loop: ENOTDIR / ELOOP named in plain words', async () => {
    const d = fixtureRun();
    writeFileSync(join(d, 'afile'), 'x');
    symlinkSync(join(d, 'loop-b'), join(d, 'loop-a'));
    symlinkSync(join(d, 'loop-a'), join(d, 'loop-b'));
    const before = snapshot(d);
    const cases: [string, RegExp][] = [
      [
        'afile',
        new RegExp(
          `^error: cannot write ${join(d, 'afile')}: a file is in the way \\(ENOTDIR\\); afile is a file, and the output is a folder\\. A folder is needed there: choose another path, or move that file away$`,
          'm',
        ),
      ],
      [
        'afile/out',
        new RegExp(`^error: cannot write ${join(d, 'afile/out')}: a file is in the way \\(ENOTDIR\\); afile is a file\\. A folder is needed there`, 'm'),
      ],
      [
        'loop-a',
        new RegExp(
          `^error: cannot write ${join(d, 'loop-a')}: symlink loop \\(ELOOP\\)\\. Symlinks on that path point back at each other: fix them, or choose another path$`,
          'm',
        ),
      ],
      ['loop-a/out', new RegExp(`^error: cannot write ${join(d, 'loop-a/out')}: symlink loop \\(ELOOP\\)`, 'm')],
    ];
    for (const [cmd, args] of Object.entries(COMMANDS)) {
      for (const [out, msg] of cases) {
        const r = await node(cmd, args(out), d);
        expect(r.status, `${cmd} --out ${out}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr).not.toMatch(/not found|ENOENT|free space/);
        expectNoStack(r);
        // Checked before the device opens: no adapter line, no data report.
        expect(r.stderr).not.toMatch(/\[webgpu-moe\] adapter|\[data\]/);
      }
    }
    expect(snapshot(d)).toEqual(before);
  });

  it.skipIf(!canMount())('a read-only file system (a real read-only tmpfs): "read-only file system (EROFS)", not ENOENT or free space', async () => {
    const d = fixtureRun();
    const ro = mountTmpfs(1 << 20, { readOnly: true, prepare: (m) => mkdirSync(join(m, 'existing')) });
    try {
      for (const [cmd, args] of Object.entries(COMMANDS)) {
        for (const out of [join(ro.dir, 'new/out'), join(ro.dir, 'existing')]) {
          const r = await node(cmd, args(out), d);
          expect(r.status, `${cmd} ${out}: ${r.stderr}`).toBe(2);
          expect(r.stderr).toMatch(
            new RegExp(
              `^error: cannot write ${out}: read-only file system \\(EROFS\\)(; \\S+ cannot be written)?\\. Write to a writable disk, or remount this one read-write$`,
              'm',
            ),
          );
          expect(r.stderr).not.toMatch(/ENOENT|not found|free space/);
          expectNoStack(r);
        }
      }
      expect(readdirSync(ro.dir)).toEqual(['existing']);
    } finally {
      ro.unmount();
    }
  });
});

describe('permission denied', () => {
  // Root passes permission checks, so the command runs as nobody (65534) on a folder root owns.
  it.skipIf(process.getuid?.() !== 0)('an --out in a folder the user may not write: "permission denied (EACCES)", exit 2, nothing written', async () => {
    const d = fixtureRun();
    mkdirSync(join(d, 'locked'));
    spawnSync('chmod', ['-R', 'a+rX', d]);
    chmodSync(join(d, 'locked'), 0o755);
    const before = snapshot(d);
    for (const [cmd, args] of Object.entries(COMMANDS)) {
      const r = await node(cmd, args('locked/out'), d, { HOME: '/tmp' }, { uid: 65534, gid: 65534 });
      expect(r.status, `${cmd}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `^error: cannot write ${join(d, 'locked/out')}: permission denied \\(EACCES\\); locked cannot be written\\. Write to a folder you may write to, or fix its permissions$`,
          'm',
        ),
      );
      expectNoStack(r);
    }
    expect(snapshot(d)).toEqual(before);
  });
});

describe('the disk fills while writing: exit 1, nothing half-written left', () => {
  it.skipIf(!canMount())('a real 24 KiB tmpfs: "no space left on device (ENOSPC)" with the bytes needed and free; no temp folder left', async () => {
    const d = fixtureRun();
    const full = mountTmpfs(24 << 10);
    try {
      // export needs ~35 KiB; forecast.js writes little, so fill the disk first.
      const r = await node('export.js', COMMANDS['export.js'](join(full.dir, 'hf')), d);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^error: cannot write ${join(full.dir, 'hf')}: no space left on device \\(ENOSPC\\); the export needs [\\d.]+ KiB and the disk has [\\d.]+ KiB free\\. Free space on that disk \\(or write to another one\\), then run again$`,
          'm',
        ),
      );
      expectNoStack(r);
      expect(readdirSync(full.dir)).toEqual([]);

      writeFileSync(join(full.dir, 'filler'), Buffer.alloc(20 << 10));
      const f = await node('forecast.js', COMMANDS['forecast.js'](join(full.dir, 'fc')), d);
      expect(f.status, f.stderr).toBe(1);
      expect(f.stderr).toMatch(new RegExp(`^error: cannot write ${join(full.dir, 'fc')}: no space left on device \\(ENOSPC\\)`, 'm'));
      expectNoStack(f);
      expect(readdirSync(full.dir)).toEqual(['filler']);
      expect(leftovers(full.dir)).toEqual([]);
    } finally {
      full.unmount();
    }
    // The run that was read is untouched, and nothing was left beside it.
    expect(existsSync(join(d, 'runs/t/checkpoints/step-2/model.safetensors'))).toBe(true);
    expect(leftovers(d)).toEqual([]);
  });
});
