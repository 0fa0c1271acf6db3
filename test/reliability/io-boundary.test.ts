/**
 * The one error boundary (src/util/cli-errors.ts): every command catches at the top, maps a known
 * error class to its exit code from the one table and prints `error: ...` with no stack trace; an
 * unknown error is a bug: a line saying so, then the stack (the only place a stack appears), exit 70.
 * Each command is run as a user runs it, with a failure injected right after its flags are parsed
 * (WEBGPU_MOE_CLI_FAULT, test-only).
 */
import { describe, it, expect } from 'vitest';
import { GpuError } from '../../src/kernels/errors.ts';
import { UiError } from '../../src/ui/errors.ts';
import { DiagnoseInputError } from '../../src/diagnose/cli.ts';
import { ConfigError } from '../../src/train/config.ts';
import { DataError } from '../../src/train/data/errors.ts';
import { HfConfigError } from '../../src/train/interop/hf-config.ts';
import { CheckpointError } from '../../src/train/persist/safetensors.ts';
import { RunFolderError } from '../../src/train/run/run-dir.ts';
import { RunStopped } from '../../src/train/run/session.ts';
import { EXIT as TRAIN_EXIT } from '../../src/train/exit-codes.ts';
import { ForecastError, NonFiniteForecastError } from '../../src/forecast/errors.ts';
import { IoError } from '../../src/util/atomic-write.ts';
import { ERROR_TABLE, EXIT, describeCliError } from '../../src/util/cli-errors.ts';
import { OutputPathError } from '../../src/util/output-path.ts';
import { ExperimentError } from '../../experiments/runner.ts';
import { scratch } from '../train/cli-helpers.ts';
import { NewerCheckpointError } from '../../src/train/persist/checkpoint.ts';
import { node } from '../support/spawn.ts';

describe('the table', () => {
  const samples: Error[] = [
    new IoError('/x', 'ENOSPC', 'write'),
    new IoError('/x', 'EROFS', 'write'),
    new OutputPathError('m'),
    new ConfigError('m'),
    new DataError('m'),
    new CheckpointError('/f', 'p', 'f'),
    new HfConfigError('w', ['p']),
    new RunFolderError('m'),
    new UiError('m'),
    new ForecastError('m'),
    new NonFiniteForecastError('m'),
    new DiagnoseInputError('m'),
    new GpuError('m', 's', 'no-adapter'),
    new GpuError('m', 's', 'device-lost'),
    new RunStopped('m', EXIT.sigterm),
    new ExperimentError('m', EXIT.stopped),
  ];

  it('names real classes: every row is matched by the class it names, and every class by a row', () => {
    expect(new Set(samples.map((e) => e.name))).toEqual(new Set(ERROR_TABLE.map((r) => r.name)));
    expect(new Set(ERROR_TABLE.map((r) => r.name)).size).toBe(ERROR_TABLE.length);
  });

  it('a subclass gets the row of its base class (a newer checkpoint format is a checkpoint problem: 2, not a bug)', () => {
    const e = new NewerCheckpointError('/run/checkpoints/step-6/state.json', 2);
    expect(e.name).not.toBe('CheckpointError');
    const d = describeCliError(e);
    expect(d.code).toBe(EXIT.badInput);
    expect(d.text).toMatch(/^error: .*format version 2/);
  });

  it('gives each its code and shape; train.js uses the same numbers', () => {
    expect(samples.map((e) => describeCliError(e).code)).toEqual([1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 2, 1, 143, 1]);
    for (const e of samples) {
      const d = describeCliError(e);
      expect(d.text).toMatch(e instanceof RunStopped ? /^stopped: / : /^error: /);
      expect(d.text).not.toMatch(/\n\s+at /);
    }
    expect(describeCliError(new IoError('/x', 'ENOSPC', 'write')).text).toBe(
      'error: cannot write /x: no space left on device (ENOSPC). Free space on that disk (or write to another one), then run again',
    );
    expect(TRAIN_EXIT).toBe(EXIT);
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
  });

  it('a raw errno error nothing wrapped is an I/O error by the same rule; anything else is a bug (70, with the stack)', () => {
    const raw = Object.assign(new Error("ELOOP: too many symbolic links encountered, stat '/a/b'"), { code: 'ELOOP', syscall: 'stat', path: '/a/b' });
    expect(describeCliError(raw)).toMatchObject({
      code: 2,
      text: 'error: cannot read /a/b: symlink loop (ELOOP). Symlinks on that path point back at each other: fix them, or choose another path',
    });
    const bug = describeCliError(new TypeError('x is undefined'), 'forecast.js');
    expect(bug.code).toBe(70);
    expect(bug.text).toMatch(
      /^error: internal error in forecast\.js \(a bug in webgpu-moe, not a problem with your input or files; please report it with the lines below, exit 70\): TypeError: x is undefined\nTypeError: x is undefined\n\s+at /,
    );
  });
});

/** Each command with arguments that get it past flag parsing (the fault fires before they are used). */
const COMMANDS: [string, string[]][] = [
  ['train.js', ['--config', 'none.json']],
  ['forecast.js', ['--checkpoint', 'none']],
  ['export.js', ['--checkpoint', 'none', '--out', 'x']],
  ['dashboard.js', ['none']],
  ['diagnose.js', ['none']],
  ['experiments/run.js', ['none']],
];

describe("every command turns an injected failure into the table's shape and code", () => {
  const d = scratch();
  for (const [cmd, args] of COMMANDS) {
    it(cmd, async () => {
      const bug = await node(cmd, args, d, { WEBGPU_MOE_CLI_FAULT: 'bug' });
      expect(bug.status, bug.stderr).toBe(70);
      expect(bug.stderr).toMatch(
        new RegExp(
          `^error: internal error in ${cmd.replace(/[./]/g, '\\$&')} \\(a bug in webgpu-moe, not a problem with your input or files; please report it with the lines below, exit 70\\): TypeError: injected by WEBGPU_MOE_CLI_FAULT`,
          'm',
        ),
      );
      expect(bug.stderr).toMatch(/^\s+at .+:\d+:\d+\)?$/m); // the stack, for the bug report

      const full = await node(cmd, args, d, { WEBGPU_MOE_CLI_FAULT: 'ENOSPC' });
      expect(full.status, full.stderr).toBe(1);
      expect(full.stderr.trim()).toBe(
        `error: cannot write /injected/${cmd}: no space left on device (ENOSPC). Free space on that disk (or write to another one), then run again`,
      );

      const ro = await node(cmd, args, d, { WEBGPU_MOE_CLI_FAULT: 'EROFS' });
      expect(ro.status, ro.stderr).toBe(2);
      expect(ro.stderr.trim()).toBe(
        `error: cannot write /injected/${cmd}: read-only file system (EROFS). Write to a writable disk, or remount this one read-write`,
      );

      const loop = await node(cmd, args, d, { WEBGPU_MOE_CLI_FAULT: 'ELOOP' });
      expect(loop.status, loop.stderr).toBe(2);
      expect(loop.stderr).toMatch(/: symlink loop \(ELOOP\)\. /);
      for (const r of [full, ro, loop]) expect(`${r.stdout}${r.stderr}`).not.toMatch(/^\s+at /m);
    });
  }

  it('an error thrown from a callback, outside main (caught by the root boundary): a bug, exit 70', async () => {
    for (const [cmd, args] of [COMMANDS[1]!, COMMANDS[4]!]) {
      const r = await node(cmd, args, d, { WEBGPU_MOE_CLI_FAULT: 'escape' });
      expect(r.status, r.stderr).toBe(70);
      expect(r.stderr).toMatch(/^error: internal error in \S+ \(a bug in webgpu-moe.*RangeError: injected by WEBGPU_MOE_CLI_FAULT in a callback/m);
    }
  });
});
