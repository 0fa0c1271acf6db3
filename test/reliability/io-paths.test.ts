/**
 * Output paths (docs/RELIABILITY.md, "Output paths"): no command destroys a run. An output is never
 * an input run, inside one, or a folder holding one (symlinks resolved), refused with exit 2 naming
 * both paths; export.js --force moves an old folder's files aside and lists them, deleting nothing;
 * train.js refuses a logging.dir that is model.init.from's run, inside it, or holding it.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FC_ARGS, expectNoStack, fixtureRun, leftovers, snapshot } from './io-helpers.ts';
import { node } from '../support/spawn.ts';

describe('export.js: the output is never the run being exported', () => {
  it('--out the run, its parent, the cwd, the checkpoint, a folder inside either, or a symlink to the run: exit 2, both paths named, the run byte-identical (with --force too)', async () => {
    const d = fixtureRun();
    symlinkSync(join(d, 'runs/t'), join(d, 'link-to-run'));
    const before = snapshot(d);
    const cases: [string, RegExp][] = [
      ['runs/t', /--out runs\/t is the run being read, runs\/t \(--checkpoint runs\/t\/checkpoints\/step-2 belongs to it\)/],
      ['runs', /--out runs holds the run being read, runs\/t/],
      ['.', /--out \. holds the run being read, runs\/t/],
      ['runs/t/checkpoints/step-2', /--out runs\/t\/checkpoints\/step-2 is inside the run being read, runs\/t/],
      ['runs/t/checkpoints/step-2/hf', /is inside the run being read, runs\/t/],
      ['runs/t/hf', /--out runs\/t\/hf is inside the run being read, runs\/t/],
      ['link-to-run', /--out link-to-run is the run being read, runs\/t \(link-to-run resolves to runs\/t\)/],
      ['link-to-run/hf', /--out link-to-run\/hf is inside the run being read, runs\/t \(link-to-run\/hf resolves to runs\/t\/hf\)/],
    ];
    for (const [out, msg] of cases) {
      for (const force of [[], ['--force']]) {
        const r = await node('export.js', ['--checkpoint', 'runs/t', '--out', out, ...force], d);
        expect(r.status, `${out} ${force.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr).toMatch(
          /an output is never an input, inside one, or a folder that holds one\. Choose an --out outside runs\/t \(e\.g\. --out runs\/t-hf\)/,
        );
        expectNoStack(r);
        expect(snapshot(d), `after --out ${out}`).toEqual(before);
      }
    }
    // Named through the checkpoint instead of the run: the same run is protected.
    const r = await node('export.js', ['--checkpoint', 'runs/t/checkpoints/step-1', '--out', 'runs/t', '--force'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--out runs\/t is the run being read, runs\/t \(--checkpoint runs\/t\/checkpoints\/step-1 belongs to it\)/);
    expect(snapshot(d)).toEqual(before);
    // A checkpoint folder outside any run is protected as itself.
    const f = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'finetuned/hf', '--force'], d);
    expect(f.status).toBe(2);
    expect(f.stderr).toMatch(/--out finetuned\/hf is inside the checkpoint being read, finetuned/);
    expect(snapshot(d)).toEqual(before);
  });

  it('--force over a folder holding files export.js did not write: they are moved to <out>.set-aside-<time>/ and listed, nothing deleted', async () => {
    const d = fixtureRun();
    mkdirSync(join(d, 'hf/notes'), { recursive: true });
    writeFileSync(join(d, 'hf/README.md'), 'my notes\n');
    writeFileSync(join(d, 'hf/notes/a.txt'), 'a\n');
    const old = snapshot(join(d, 'hf'));
    const r = await node('export.js', ['--checkpoint', 'runs/t', '--out', 'hf'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /hf: already exists and is not empty \(README\.md, notes\/a\.txt\)\. Choose another --out, or pass --force to move its files aside into hf\.set-aside-<time>\/ \(nothing is deleted\)/,
    );
    expect(snapshot(join(d, 'hf'))).toEqual(old);

    const f = await node('export.js', ['--checkpoint', 'runs/t', '--out', 'hf', '--force'], d);
    expect(f.status, f.stderr).toBe(0);
    const m = /\[export\] --force: the previous files of hf were moved to (hf\.set-aside-[\dT:Z-]+)\/ \(nothing deleted\): README\.md, notes\/a\.txt/.exec(
      f.stderr,
    );
    expect(m, f.stderr).not.toBeNull();
    expect(snapshot(join(d, m![1]!))).toEqual(old);
    expect(readdirSync(join(d, 'hf')).sort()).toEqual(['SHA256SUMS', 'config.json', 'model.safetensors']);
    // Again: the previous export is set aside too (a second, distinct folder), still nothing deleted.
    const g = await node('export.js', ['--checkpoint', 'runs/t', '--out', 'hf', '--force'], d);
    expect(g.status, g.stderr).toBe(0);
    expect(g.stderr).toMatch(/moved to hf\.set-aside-\S+\/ \(nothing deleted\): SHA256SUMS, config\.json, model\.safetensors/);
    expect(readdirSync(d).filter((n) => n.startsWith('hf.set-aside-')).length).toBe(2);
    expect(leftovers(d)).toEqual([]);
  });
});

describe('forecast.js: the output is never the run being read (its own forecast/ aside)', () => {
  it('--out the run, inside its checkpoints, or a folder holding it: exit 2, the run byte-identical; the default <run>/forecast still works', async () => {
    const d = fixtureRun();
    const before = snapshot(join(d, 'runs'));
    for (const [out, msg] of [
      ['runs/t', /--out runs\/t is the run being read, runs\/t/],
      ['runs/t/checkpoints', /--out runs\/t\/checkpoints is inside the run being read, runs\/t/],
      ['runs/t/checkpoints/step-2/fc', /is inside the run being read, runs\/t/],
      ['runs', /--out runs holds the run being read, runs\/t/],
    ] as const) {
      const r = await node('forecast.js', ['--checkpoint', 'runs/t', ...FC_ARGS, '--out', out], d);
      expect(r.status, `${out}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toMatch(/Choose an --out outside runs\/t \(e\.g\. --out runs\/t-forecast\)/);
      expectNoStack(r);
      expect(snapshot(join(d, 'runs'))).toEqual(before);
    }
    const ok = await node('forecast.js', ['--checkpoint', 'runs/t', ...FC_ARGS], d);
    expect(ok.status, ok.stderr).toBe(0);
    expect(readdirSync(join(d, 'runs/t/forecast')).sort()).toEqual(['charts', 'forecasts.csv']);
    // And again (it replaces its own earlier forecast), by its explicit name.
    const again = await node('forecast.js', ['--checkpoint', 'runs/t', ...FC_ARGS, '--out', 'runs/t/forecast'], d);
    expect(again.status, again.stderr).toBe(0);
    const after = snapshot(join(d, 'runs'));
    for (const k of Object.keys(before)) expect(after[k], k).toBe(before[k]);
  });

  it('the default output (./forecast) inside the model folder being read is refused the same way', async () => {
    const d = fixtureRun();
    const before = snapshot(join(d, 'tiny-f32'));
    const r = await node('forecast.js', ['--checkpoint', '.', '--data', '../series.csv', '--context', '12'], join(d, 'tiny-f32'));
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: the default output folder forecast is inside the model folder being read, \. \(--checkpoint \. belongs to it\)\..* Choose an --out outside \. /m,
    );
    expectNoStack(r);
    expect(snapshot(join(d, 'tiny-f32'))).toEqual(before);
  });

  it('an --out whose charts/ holds a file forecast.js did not write is refused (the folder is replaced whole)', async () => {
    const d = fixtureRun();
    mkdirSync(join(d, 'fc/charts'), { recursive: true });
    writeFileSync(join(d, 'fc/charts/keep.png'), 'x');
    const r = await node('forecast.js', ['--checkpoint', 'runs/t', ...FC_ARGS, '--out', 'fc'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--out fc holds files forecast\.js did not write \(charts\/keep\.png\)/);
    expect(readFileSync(join(d, 'fc/charts/keep.png'), 'utf8')).toBe('x');
  });
});

describe("train.js: a run folder is never model.init.from's run", () => {
  it('logging.dir = the source run (--overwrite), inside it, or holding it: exit 2, nothing moved or created', async () => {
    const d = fixtureRun();
    const before = snapshot(d);
    const cases: [string[], RegExp][] = [
      [
        ['--set', 'logging.dir=runs/t', '--overwrite'],
        /logging\.dir runs\/t is the run model\.init\.from reads \(model\.init\.from runs\/t: runs\/t\/checkpoints\/step-2\)/,
      ],
      [['--set', 'logging.dir=runs/t/finetune'], /logging\.dir runs\/t\/finetune is inside runs\/t, the run model\.init\.from reads/],
      [['--set', 'logging.dir=runs'], /logging\.dir runs holds runs\/t, the run model\.init\.from reads/],
    ];
    for (const [args, msg] of cases) {
      const r = await node('train.js', ['--config', 'finetune.json', '--set', 'model.init.from=runs/t', ...args], d);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toMatch(
        /A run there would move aside, prune or mix its files with the weights it starts from\. Train into another folder \(e\.g\. --set logging\.dir=runs\/t-finetune\), or copy the checkpoint out of the run first/,
      );
      expectNoStack(r);
      expect(snapshot(d), args.join(' ')).toEqual(before);
    }
    expect(existsSync(join(d, 'runs/t/set-aside'))).toBe(false);
  });
});
