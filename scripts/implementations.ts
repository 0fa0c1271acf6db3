/**
 * The same-loss check and step time of small-moe on every WebGPU implementation reachable here
 * (docs/IMPLEMENTATIONS.md): runs `node train.js --config small-moe.json` for a few steps under
 * each, reads each run's metrics.jsonl, and compares the first steps' losses with the first
 * implementation's (the reference, Mesa 25 lavapipe).
 *
 *   npx tsx scripts/implementations.ts [--steps 8] [--check 3] [--only a,b] [--json out.json]
 *
 * Implementations: `lavapipe` (the host's Vulkan ICD), `swiftshader` (Chromium's SwiftShader ICD,
 * /usr/lib/chromium/vk_swiftshader_icd.json), `lavapipe-default-limits` (WEBGPU_MOE_LIMITS=default),
 * `lavapipe-26` (Mesa 26.1 inside the Debian 13 root of scripts/trixie-root.sh; needs root).
 * Each runs the CPU adapter's kernel family; `--kernels gpu` forces the GPU family on all.
 *
 * Step time: the median `ms` of steps 2..N (step 1 compiles the pipelines). Exit 1 when a loss of
 * the first `--check` steps differs from the reference's by more than the tolerance below.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { median } from '../src/diagnose/stats.ts';
import { readMetrics } from '../src/report/metrics-file.ts';
import { writeFileAtomic } from '../src/util/atomic-write.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Relative tolerance on the first steps' losses. Every implementation runs the same WGSL with the
 * same workgroup sizes and reduction orders (no kernel uses subgroup operations), so what differs
 * is the compiler: FMA contraction and the precision of exp/tanh/sqrt (WGSL allows a few ulp), each
 * a few f32 ulps per operation. Step 1's loss is a mean over 16 x 64 tokens of a forward of
 * ~10^3 operations deep: ~1e-6 relative; steps 2-3 add an AdamW update whose early steps
 * (m / sqrt(v) ~ sign(g)) amplify tiny gradient differences only where g ~ 0. 1e-4 is ~10x the
 * worst difference measured (docs/IMPLEMENTATIONS.md); a wrong kernel is off by >= 1e-2.
 */
const LOSS_RTOL = 1e-4;

interface Impl {
  name: string;
  /** Extra environment, and a command prefix (the chroot runner). */
  env: Record<string, string>;
  prefix: string[];
  available: () => string | null;
}

const IMPLS: Impl[] = [
  { name: 'lavapipe', env: {}, prefix: [], available: () => null },
  {
    name: 'swiftshader',
    env: { VK_ICD_FILENAMES: SWIFTSHADER_ICD },
    prefix: [],
    available: () => (existsSync(SWIFTSHADER_ICD) ? null : `${SWIFTSHADER_ICD} not found (Debian's chromium package ships it; scripts/setup.sh installs it)`),
  },
  { name: 'lavapipe-default-limits', env: { WEBGPU_MOE_LIMITS: 'default' }, prefix: [], available: () => null },
  {
    name: 'lavapipe-26',
    env: {},
    prefix: [...(process.getuid?.() === 0 ? [] : ['sudo']), 'bash', 'scripts/trixie-root.sh', 'run', '--'],
    available: () => (process.platform === 'linux' ? null : 'needs Linux (chroot)'),
  },
];

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

const steps = Number(arg('--steps', '8'));
const check = Number(arg('--check', '3'));
const kernels = arg('--kernels', '');
const only = arg('--only', '').split(',').filter(Boolean);
const jsonOut = arg('--json', '');

interface Result {
  name: string;
  adapter: string;
  losses: number[];
  ms: number[];
  medianMs: number;
  maxRelDiff: number | null;
  skipped?: string;
}

function run(impl: Impl, dir: string): { adapter: string; losses: number[]; ms: number[] } {
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...impl.env, ...(kernels ? { WEBGPU_MOE_KERNELS: kernels } : {}) };
  // The chroot runner passes on only WEBGPU_MOE_KERNELS and WEBGPU_MOE_LIMITS (scripts/trixie-root.sh).
  const sets = [
    `schedule.steps=${steps}`,
    'schedule.warmupSteps=1',
    `logging.dir=${dir}`,
    'logging.progress=none',
    `logging.validEvery=${steps}`,
    `checkpoint.every=${steps}`,
  ].flatMap((s) => ['--set', s]);
  const cmd = [...impl.prefix, 'node', 'train.js', '--config', 'small-moe.json', ...sets, '--overwrite'];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: ROOT, env, encoding: 'utf8' });
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0) throw new Error(`${impl.name}: ${cmd.join(' ')} exited ${r.status}:\n${out.slice(-3000)}`);
  const adapter = /\[webgpu-moe\] adapter: ([^;]*)/.exec(out)?.[1] ?? '?';
  const train = readMetrics(join(dir, 'metrics.jsonl')).train;
  return { adapter, losses: train.map((t) => t.loss), ms: train.map((t) => t.ms ?? NaN) };
}

const results: Result[] = [];
let failed = false;
for (const impl of IMPLS.filter((i) => !only.length || only.includes(i.name))) {
  const why = impl.available();
  if (why) {
    console.error(`[implementations] ${impl.name}: skipped: ${why}`);
    results.push({ name: impl.name, adapter: '', losses: [], ms: [], medianMs: NaN, maxRelDiff: null, skipped: why });
    continue;
  }
  // Under /tmp, which the chroot runner bind-mounts at the same path.
  const dir = mkdtempSync(join(tmpdir(), `wmoe-impl-${impl.name}-`));
  try {
    console.error(`[implementations] ${impl.name}: ${steps} steps of small-moe`);
    const { adapter, losses, ms } = run(impl, dir);
    const ref = results.find((r) => !r.skipped);
    let maxRelDiff: number | null = null;
    if (ref) {
      maxRelDiff = 0;
      for (let s = 0; s < check; s++) {
        const a = losses[s];
        const b = ref.losses[s];
        if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) {
          maxRelDiff = Infinity;
          break;
        }
        maxRelDiff = Math.max(maxRelDiff, Math.abs(a - b) / Math.abs(b));
      }
      if (!(maxRelDiff <= LOSS_RTOL)) failed = true;
    }
    results.push({ name: impl.name, adapter, losses, ms, medianMs: median(ms.slice(1)), maxRelDiff });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (x: number | null) => (x === null ? 'reference' : x === 0 ? '0' : x.toExponential(1));
console.log(`| implementation | adapter | losses of steps 1..${check} | max relative difference (tolerance ${LOSS_RTOL}) | median step, steps 2..${steps} |`);
console.log('|---|---|---|---|---|');
for (const r of results) {
  if (r.skipped) {
    console.log(`| ${r.name} | skipped: ${r.skipped} | | | |`);
    continue;
  }
  console.log(
    `| ${r.name} | ${r.adapter} | ${r.losses
      .slice(0, check)
      .map((l) => l.toFixed(6))
      .join(', ')} | ${fmt(r.maxRelDiff)} | ${r.medianMs.toFixed(0)} ms |`,
  );
}
if (jsonOut) {
  writeFileAtomic(jsonOut, JSON.stringify({ steps, check, kernels: kernels || 'auto', tolerance: LOSS_RTOL, results }, null, 2) + '\n');
}
if (failed) {
  console.error(`[implementations] a loss differs from the reference's by more than ${LOSS_RTOL} (relative)`);
  process.exit(1);
}
