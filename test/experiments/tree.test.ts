/**
 * An experiment writes its runs and reports without touching a tracked file unless asked to
 * (`--refresh` writes the committed experiments/results/): `npm run experiment -- nan` used to
 * rewrite results/nan/README.md (its timings) on every run, leaving the tree modified.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO, defaultRoots } from '../../experiments/runner.ts';
import { SCENARIO_TIMEOUT } from './helpers.ts';

const run = promisify(execFile);
const git = async (...args: string[]) => (await run('git', args, { cwd: REPO, maxBuffer: 64 << 20 })).stdout;
/** Tracked files' changes (the full diff, so a rewrite of an already modified file counts) and every non-ignored file. */
const treeState = async () => ({ status: await git('status', '--porcelain', '--untracked-files=all'), diff: await git('diff', 'HEAD') });
const ignored = async (path: string) =>
  run('git', ['check-ignore', '-q', path], { cwd: REPO }).then(
    () => true,
    () => false,
  );

describe('experiments leave the tracked tree alone', () => {
  it('only --refresh writes under experiments/results/; every other mode writes gitignored folders', async () => {
    const full = defaultRoots('full');
    const refresh = defaultRoots('full', true);
    const fast = defaultRoots('fast');
    expect(refresh.resultsRoot).toBe(join(REPO, 'experiments', 'results'));
    for (const root of [full.runsRoot, full.resultsRoot, fast.runsRoot, fast.resultsRoot]) {
      expect(root.startsWith(join(REPO, 'experiments', 'results')), root).toBe(false);
      expect(await ignored(join(root, 'nan', 'README.md')), `${root} is gitignored`).toBe(true);
    }
    expect(await ignored(join(refresh.resultsRoot, 'nan', 'README.md'))).toBe(false);
  });

  it(
    '`node experiments/run.js nan --fast` through the CLI leaves git status and every tracked file unchanged',
    async () => {
      const before = await treeState();
      const r = await run(process.execPath, [join(REPO, 'experiments', 'run.js'), 'nan', '--fast'], {
        cwd: REPO,
        env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
        maxBuffer: 64 << 20,
      });
      expect(r.stdout).toMatch(/\[experiment\] nan: report experiments\/runs\/fast\/results\/nan\/README\.md/);
      expect(await treeState()).toEqual(before);
    },
    SCENARIO_TIMEOUT,
  );

  it('--fast --refresh is refused: fast reports are never committed', async () => {
    const err = await run(process.execPath, [join(REPO, 'experiments', 'run.js'), 'nan', '--fast', '--refresh'], { cwd: REPO }).then(
      () => null,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/--refresh writes the committed full reports/);
  });
});
