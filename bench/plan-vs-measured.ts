/**
 * Planned vs measured peak through the CLI a user types, for the README's plan section:
 * `node train.js --config small-moe.json --plan --json --target this` against a 3-step run of the
 * same config (`peakBytes` of steps 2 and 3 in metrics.jsonl), for the paths that allocate
 * differently (f32, recompute, f16, f16 + recompute) on the adapter's kernel family and, forced
 * with WEBGPU_MOE_KERNELS=gpu, on the GPU family. Writes bench/results/plan-vs-measured.{json,md}.
 * Run: node --import tsx bench/plan-vs-measured.ts   (about 2 minutes on lavapipe)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { readMetrics } from '../src/report/metrics-file.ts';
import { environment, writeResults, type BenchRow } from './harness.ts';

const ROOT = join(import.meta.dirname, '..');

const VARIANTS: [string, string[]][] = [
  ['f32', []],
  ['recompute', ['schedule.recompute=true']],
  ['f16 activations', ['precision.activations=f16']],
  ['f16 + recompute', ['precision.activations=f16', 'schedule.recompute=true']],
];

function cli(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['train.js', '--config', 'small-moe.json', ...args], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`train.js ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r;
}

const rows: BenchRow[] = [];
for (const family of ['adapter', 'gpu'] as const) {
  const env = { ...process.env };
  if (family === 'gpu') env.WEBGPU_MOE_KERNELS = 'gpu';
  else delete env.WEBGPU_MOE_KERNELS;
  for (const [name, sets] of VARIANTS) {
    if (family === 'gpu' && name !== 'f32' && name !== 'f16 activations') continue;
    const dir = mkdtempSync(join(tmpdir(), 'plan-vs-measured-'));
    const set = [
      ...sets,
      'schedule.steps=3',
      'schedule.warmupSteps=1',
      'logging.validBatches=1',
      `logging.dir=${join(dir, 'run')}`,
      'checkpoint.every=0',
    ].flatMap((s) => ['--set', s]);
    const plan = JSON.parse(cli([...set, '--plan', '--json', '--target', 'this'], env).stdout) as { peakBytes: number; target: { family: string } };
    cli(set, env);
    const peaks = readMetrics(join(dir, 'run', 'metrics.jsonl'))
      .train.filter((m) => m.step >= 2)
      .map((m) => m.peakBytes);
    rmSync(dir, { recursive: true, force: true });
    rows.push({
      'small-moe.json': name,
      kernels: plan.target.family + (family === 'gpu' ? ' (forced)' : ''),
      'planned peak bytes': plan.peakBytes,
      'measured, steps 2 and 3': peaks.join(', '),
      equal: peaks.length === 2 && peaks.every((p) => p === plan.peakBytes) ? 'yes' : 'NO',
    });
    console.error(`${name} (${plan.target.family}): planned ${plan.peakBytes}, measured ${peaks.join(', ')}`);
  }
}
const rt = await getRuntime({ announce: false });
const files = writeResults(
  'plan-vs-measured',
  [
    {
      title: 'planned peak (train.js --plan --json --target this) vs the pool peak of a 3-step run (metrics.jsonl)',
      rows,
      notes: ['Each row: the same `--set` overrides for the plan and the run; validation batches 1, no checkpoints (neither changes the step peak).'],
    },
  ],
  environment(rt),
);
console.log(`wrote ${files.md}`);
