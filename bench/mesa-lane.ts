/**
 * The "newest Mesa" lane (docs/BENCHMARKS.md): the same training steps and matmul variant table on
 * two lavapipe drivers in one session — the host's (bookworm-backports Mesa) and the newest one
 * (trixie-backports Mesa, run in the Debian 13 root of scripts/trixie-root.sh) — next to PyTorch
 * CPU eager on the host, measured in the same run.
 *
 *   node bench/run.js mesa-lane [--rounds N] [--quick] [--no-train] [--no-matmul] [--variants REGEX]
 *
 * One worker process per driver (`node bench/run.js mesa-lane-worker`, the second one inside the
 * root) keeps its engines and compiled pipelines; this process sends both the same blocks of work
 * in turn (host, trixie, then trixie, host in the next round: the 2-core machine is shared, and
 * interleaving makes load drift hit both drivers alike), runs the PyTorch peer between them, samples
 * the load average, and writes bench/results/mesa-lane.{md,json}. Needs root (the chroot).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { DawnRuntime } from '../src/kernels/runtime.ts';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { VARIANTS, resolveConfig, type MatmulConfig } from '../src/kernels/matmul-config.ts';
import { writeFileAtomic } from '../src/util/atomic-write.ts';
import { markdownTable, round, summarize, type BenchRow } from './harness.ts';
import { VARIANT_SHAPES, matmulCase } from './matmul.bench.ts';
import { blasLabel, num, runTorchPeer } from './mlp.bench.ts';
import { OurEngine, trainCases, type Case } from './train.bench.ts';
import { torchConfig } from './workloads.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
/** Marks the worker's answers on its stdout (native code may print there too). */
const TAG = '@@mesa-lane ';

// ------------------------------------------------------------------------------------ protocol

const CommandSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('train'), name: z.string(), steps: z.number().int().positive() }),
  z.object({
    op: z.literal('matmul'),
    shape: z.string(),
    cfg: z
      .object({
        wgL: z.number(),
        wgU: z.number(),
        tl: z.number(),
        tu: z.number(),
        ku: z.number(),
        vec4: z.boolean(),
        lane: z.enum(['m', 'n']),
      })
      .partial(),
    samples: z.number().int().positive(),
  }),
  z.object({ op: z.literal('quit') }),
]);
type Command = z.infer<typeof CommandSchema>;

const InfoSchema = z.object({
  description: z.string(),
  device: z.string(),
  node: z.string(),
  glibc: z.string(),
  /** The register-blocked tiling the engine's policy picks on this driver. */
  blocked: z.string(),
  f16: z.boolean(),
});
type DriverInfo = z.infer<typeof InfoSchema>;

const ReplySchema = z.union([
  z.object({ op: z.literal('ready'), info: InfoSchema }),
  z.object({ op: z.literal('train'), ms: z.array(z.number()), cpuMs: z.array(z.number()), warmupMs: z.number().nullable(), loss: z.number() }),
  z.object({ op: z.literal('matmul'), check: z.string(), ms: z.array(z.number()), cpuMs: z.array(z.number()) }),
  z.object({ op: z.literal('error'), message: z.string() }),
]);
type Reply = z.infer<typeof ReplySchema>;

// -------------------------------------------------------------------------------------- worker

function blockedText(c: MatmulConfig | Partial<MatmulConfig>): string {
  return `wg ${c.wgL}x${c.wgU}, ${c.tl}x${c.tu}, K unroll ${c.ku}${c.vec4 ? ', vec4' : ''}`;
}

/** CPU time of this process (all its threads: lavapipe's too) since `u0`, in ms. */
function cpuMsSince(u0: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(u0);
  return (u.user + u.system) / 1000;
}

/** Runs the commands of the lane on this process's driver, one JSON line in, one tagged line out. */
async function worker(quick: boolean): Promise<number> {
  const rt = await getRuntime({ announce: false });
  const send = (r: Reply) => process.stdout.write(`${TAG}${JSON.stringify(r)}\n`);
  const header = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const probe = VARIANT_SHAPES[1]!;
  send({
    op: 'ready',
    info: {
      description: rt.caps.adapter.description,
      device: rt.caps.adapter.device,
      node: process.version,
      glibc: header?.header?.glibcVersionRuntime ?? 'unknown',
      blocked: rt.policy.matmul.kind === 'blocked' ? blockedText(resolveConfig(probe, rt.policy.matmul.blocked)) : rt.policy.matmul.kind,
      f16: rt.caps.f16,
    },
  });
  const cases = new Map(trainCases(quick, false).map((c) => [c.name, c]));
  const engines = new Map<string, OurEngine>();
  const products = new Map<string, { c: ReturnType<typeof matmulCase>; check: string; ok: boolean; iters: number }>();
  const train = async (c: Case, steps: number): Promise<Reply> => {
    let eng = engines.get(c.name);
    let warmupMs: number | null = null;
    if (!eng) {
      eng = new OurEngine(rt, c);
      engines.set(c.name, eng);
      const t0 = performance.now();
      for (let i = 0; i < c.warmup + 1; i++) await eng.step(); // the first compiles the pipelines
      warmupMs = performance.now() - t0;
    }
    const ms: number[] = [];
    const cpuMs: number[] = [];
    let loss = NaN;
    for (let i = 0; i < steps; i++) {
      const u0 = process.cpuUsage();
      const m = await eng.step();
      cpuMs.push(cpuMsSince(u0));
      ms.push(m.ms);
      loss = m.loss;
    }
    return { op: 'train', ms, cpuMs, warmupMs, loss };
  };
  const answer = async (cmd: Command): Promise<Reply | null> => {
    if (cmd.op === 'quit') return null;
    if (cmd.op === 'train') {
      const c = cases.get(cmd.name);
      if (!c) return { op: 'error', message: `unknown case ${cmd.name}` };
      return train(c, cmd.steps);
    }
    const s = VARIANT_SHAPES.find((v) => v.name === cmd.shape);
    if (!s) return { op: 'error', message: `unknown shape ${cmd.shape}` };
    const key = `${s.name} ${JSON.stringify(cmd.cfg)}`;
    let m = products.get(key);
    if (!m) {
      // Checked once against float64 (a wrong kernel is not timed), warmed up (compiled), and
      // calibrated once: every round then times the same number of products per sample.
      const c = matmulCase(rt, s, cmd.cfg);
      const check = await c.check();
      c.record();
      await rt.sync();
      const t0 = performance.now();
      c.record();
      await rt.sync();
      const iters = Math.max(1, Math.min(500, Math.round(200 / Math.max(performance.now() - t0, 1e-3))));
      products.set(key, (m = { c, check: check.text, ok: check.ok, iters }));
    }
    if (!m.ok) return { op: 'matmul', check: m.check, ms: [], cpuMs: [] };
    const ms: number[] = [];
    const cpuMs: number[] = [];
    for (let i = 0; i < cmd.samples; i++) {
      const u0 = process.cpuUsage();
      const t0 = performance.now();
      for (let j = 0; j < m.iters; j++) m.c.record();
      await rt.sync();
      ms.push((performance.now() - t0) / m.iters);
      cpuMs.push(cpuMsSince(u0) / m.iters);
    }
    return { op: 'matmul', check: m.check, ms, cpuMs };
  };
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    let reply: Reply | null;
    try {
      reply = await answer(CommandSchema.parse(JSON.parse(line)));
    } catch (e) {
      reply = { op: 'error', message: (e as Error).message };
    }
    if (reply === null) break;
    send(reply);
  }
  for (const e of engines.values()) e.dispose();
  for (const p of products.values()) p.c.dispose();
  return 0;
}

// -------------------------------------------------------------------------------- orchestrator

interface Driver {
  key: 'host' | 'trixie';
  label: string;
  info: DriverInfo;
  ask(cmd: Command): Promise<Reply>;
  quit(): Promise<void>;
}

async function startDriver(key: Driver['key'], argv: string[], log: (m: string) => void): Promise<Driver> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const child: ChildProcessWithoutNullStreams = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  const waiting: ((r: Reply) => void)[] = [];
  let failed: string | null = null;
  let stderrTail = '';
  child.stderr.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-2000)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith(TAG)) return;
    const r = ReplySchema.parse(JSON.parse(line.slice(TAG.length)));
    waiting.shift()?.(r);
  });
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      failed = `worker ${key} exited (${code ?? signal}): ${stderrTail.trim().split('\n').slice(-3).join(' / ')}`;
      for (const w of waiting.splice(0)) w({ op: 'error', message: failed });
      resolve();
    }),
  );
  const next = () => new Promise<Reply>((resolve) => (failed ? resolve({ op: 'error', message: failed }) : waiting.push(resolve)));
  const ready = await next();
  if (ready.op !== 'ready') throw new Error(`mesa lane: the ${key} worker did not start: ${ready.op === 'error' ? ready.message : ready.op}`);
  const mesa = /Mesa ([\w.~+-]+)/.exec(ready.info.description)?.[1] ?? '?';
  log(`${key}: ${ready.info.description} (node ${ready.info.node}, glibc ${ready.info.glibc})`);
  return {
    key,
    label: `${key} lavapipe (Mesa ${mesa})`,
    info: ready.info,
    ask: (c) => {
      const p = next();
      child.stdin.write(`${JSON.stringify(c)}\n`);
      return p;
    },
    quit: async () => {
      child.stdin.write(`${JSON.stringify({ op: 'quit' })}\n`);
      child.stdin.end();
      await exited;
    },
  };
}

/** Median, min, max and quartiles of a sample. */
function stat(xs: readonly number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => {
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (i - lo);
  };
  return { n: s.length, median: q(0.5), min: s[0]!, max: s[s.length - 1]!, q1: q(0.25), q3: q(0.75) };
}

function parseVersion(description: string, what: 'Mesa' | 'LLVM'): string {
  return new RegExp(`${what} ([0-9][\\w.~+-]*)`).exec(description)?.[1]?.replace(/\)$/, '') ?? '?';
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux: os.cpus() below
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** Wall and CPU ms of one engine on one case (per step), all rounds, with each round's medians. */
interface Series {
  ms: number[];
  cpuMs: number[];
  rounds: number[];
  cpuRounds: number[];
}

const emptySeries = (): Series => ({ ms: [], cpuMs: [], rounds: [], cpuRounds: [] });

function addRound(s: Series, ms: readonly number[], cpuMs: readonly number[]): void {
  s.ms.push(...ms);
  s.cpuMs.push(...cpuMs);
  s.rounds.push(stat(ms).median);
  if (cpuMs.length) s.cpuRounds.push(stat(cpuMs).median);
}

interface TorchSeries extends Series {
  threads: number;
  version: string;
  blas: string;
  note: string;
}

interface OurSeries extends Series {
  warmupMs: number | null;
  loss: number;
}

export async function main(argv: readonly string[]): Promise<number> {
  const quick = argv.includes('--quick');
  if (argv[0] === 'mesa-lane-worker') return worker(quick);
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rounds = Number(flag('--rounds') ?? (quick ? 1 : 4));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`mesa lane: --rounds must be a positive integer`);
  const doTrain = !argv.includes('--no-train');
  const doMatmul = !argv.includes('--no-matmul');
  const log = (m: string) => console.error(`[mesa-lane] ${m}`);
  if (process.getuid?.() !== 0) {
    console.error('mesa lane: needs root (the Debian 13 root of scripts/trixie-root.sh is entered with chroot); run it with sudo');
    return 2;
  }
  const trixieRoot = process.env.WEBGPU_MOE_TRIXIE ?? '/var/tmp/webgpu-moe-trixie';
  if (!existsSync(join(trixieRoot, 'usr/bin/node'))) {
    console.error(`mesa lane: no Debian 13 root at ${trixieRoot}: make it with \`bash scripts/trixie-root.sh\``);
    return 2;
  }
  const extra = quick ? ['--quick'] : [];
  const loads: number[] = [];
  const sampleLoad = () => loads.push(loadavg()[0]!);
  sampleLoad();
  const timer = setInterval(sampleLoad, 10_000);
  const t0 = performance.now();
  const host = await startDriver('host', [process.execPath, join(ROOT, 'bench', 'run.js'), 'mesa-lane-worker', ...extra], log);
  const trixie = await startDriver(
    'trixie',
    ['bash', join(ROOT, 'scripts', 'trixie-root.sh'), 'run', '--', 'node', 'bench/run.js', 'mesa-lane-worker', ...extra],
    log,
  );
  const drivers = [host, trixie];
  const must = async (d: Driver, c: Command): Promise<Reply> => {
    const r = await d.ask(c);
    if (r.op === 'error') throw new Error(`mesa lane (${d.key}): ${r.message}`);
    return r;
  };

  const cases = trainCases(quick, false).filter((c) => c.torch !== false);
  const ours = new Map<string, OurSeries>(); // `${case}|${driver}`
  const torch = new Map<string, TorchSeries>(); // `${case}|${threads}`
  const matmul = new Map<string, Series & { check: string }>(); // `${variant}|${shape}|${driver}`
  const only = flag('--variants'); // a regular expression on the variant names
  const variants = Object.entries(VARIANTS).filter(([n]) => !only || new RegExp(only).test(n));
  const shapes = quick ? VARIANT_SHAPES.slice(0, 1) : VARIANT_SHAPES;
  const samples = quick ? 2 : 3;
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [trixie, host] : [host, trixie];
      const tag = `round ${r + 1}/${rounds}`;
      if (doTrain)
        for (const c of cases) {
          for (const d of order) {
            const rep = await must(d, { op: 'train', name: c.name, steps: c.steps });
            if (rep.op !== 'train') continue;
            const k = `${c.name}|${d.key}`;
            const s = ours.get(k) ?? { ...emptySeries(), warmupMs: null, loss: NaN };
            addRound(s, rep.ms, rep.cpuMs);
            s.warmupMs ??= rep.warmupMs;
            s.loss = rep.loss;
            ours.set(k, s);
            log(
              `${tag} ${c.name} ${d.key}: ${stat(rep.ms).median.toFixed(0)} ms/step, ${stat(rep.cpuMs).median.toFixed(0)} CPU ms (load ${loadavg()[0]!.toFixed(1)})`,
            );
          }
          for (const threads of [1, 2]) {
            const k = `${c.name}|${threads}`;
            const t = torch.get(k) ?? { ...emptySeries(), threads, version: '', blas: 'CPU', note: '' };
            torch.set(k, t);
            if (t.note) continue;
            const p = runTorchPeer('torch_train.py', [
              ...['--config', torchConfig(c.cfg), '--batch', String(c.B), '--context', String(c.T)],
              ...['--threads', String(threads), '--warmup', '1', '--steps', String(c.steps), '--lr', String(c.cfg.optim.lr)],
            ]);
            const nums = (v: unknown) => (Array.isArray(v) ? v.map(num).filter((x): x is number => x !== null) : []);
            const ms = nums(p.data.ms_samples);
            if (!p.ok || !ms.length) {
              t.note = p.note || 'no samples';
              log(`PyTorch ${threads}t skipped: ${t.note}`);
              continue;
            }
            const cpuMs = nums(p.data.cpu_ms_samples);
            addRound(t, ms, cpuMs);
            t.version = String(p.data.torch);
            t.blas = blasLabel(p.data.blas_gflops, p.data.blas_note);
            log(`${tag} ${c.name} PyTorch ${threads}t: ${stat(ms).median.toFixed(0)} ms/step, ${cpuMs.length ? stat(cpuMs).median.toFixed(0) : '?'} CPU ms`);
          }
        }
      if (doMatmul) {
        for (const [name, cfg] of variants)
          for (const s of shapes)
            for (const d of order) {
              const rep = await must(d, { op: 'matmul', shape: s.name, cfg, samples });
              if (rep.op !== 'matmul') continue;
              const k = `${name}|${s.name}|${d.key}`;
              const e = matmul.get(k) ?? { ...emptySeries(), check: rep.check };
              if (rep.ms.length) addRound(e, rep.ms, rep.cpuMs);
              matmul.set(k, e);
            }
        log(`${tag}: matmul variants done (load ${loadavg()[0]!.toFixed(1)})`);
      }
    }
  } finally {
    clearInterval(timer);
    sampleLoad();
    await Promise.all(drivers.map((d) => d.quit()));
  }
  const minutes = (performance.now() - t0) / 60_000;

  // ---- tables
  const load = stat(loads);
  const range = (xs: readonly number[], d = 0) => (xs.length ? `${stat(xs).min.toFixed(d)}–${stat(xs).max.toFixed(d)}` : null);
  const med = (xs: readonly number[]) => (xs.length ? stat(xs).median : null);
  const ratio = (a: number | null, b: number | null, d = 2) => (a !== null && b !== null && b > 0 ? round(a / b, d) : null);
  /** min–max over rounds of a[r] / b[r] (the ratio within each round). */
  const paired = (a: readonly number[], b: readonly number[]) =>
    a.length && a.length === b.length
      ? range(
          a.map((x, i) => x / b[i]!),
          2,
        )
      : null;
  const driverRows: BenchRow[] = drivers.map((d) => ({
    driver: d.key,
    Mesa: parseVersion(d.info.description, 'Mesa'),
    LLVM: parseVersion(d.info.description, 'LLVM'),
    'adapter description': d.info.description,
    node: d.info.node,
    glibc: d.info.glibc,
    'CPU-family matmul the policy picks': d.info.blocked,
  }));
  const trainRows: BenchRow[] = [];
  const ratioRows: BenchRow[] = [];
  for (const c of doTrain ? cases : []) {
    const t1 = torch.get(`${c.name}|1`);
    const t2 = torch.get(`${c.name}|2`);
    const row = (engine: string, s: Series, extraCells: BenchRow = {}): BenchRow => ({
      model: c.name,
      batch: `B=${c.B} T=${c.T}`,
      engine,
      'ms/step (median)': round(med(s.ms)!, 1),
      'min–max': range(s.ms),
      IQR: `${stat(s.ms).q1.toFixed(0)}–${stat(s.ms).q3.toFixed(0)}`,
      'round medians': s.rounds.map((x) => x.toFixed(0)).join(', '),
      'CPU ms/step (median)': s.cpuMs.length ? round(med(s.cpuMs)!, 1) : null,
      steps: s.ms.length,
      ...extraCells,
    });
    for (const d of drivers) {
      const s = ours.get(`${c.name}|${d.key}`);
      if (!s) continue;
      trainRows.push(row(`webgpu-moe, ${d.label}`, s, { 'first steps (compile) ms': s.warmupMs === null ? null : round(s.warmupMs, 0) }));
    }
    const peers = [t1, t2].filter((t): t is TorchSeries => !!t && !t.note && t.ms.length > 0);
    for (const t of peers) trainRows.push(row(`PyTorch ${t.version} CPU eager, ${t.threads} thread${t.threads > 1 ? 's' : ''}, ${t.blas}`, t));
    for (const d of drivers) {
      const s = ours.get(`${c.name}|${d.key}`);
      if (!s) continue;
      const cell: BenchRow = { model: c.name, driver: d.label };
      for (const t of peers) {
        const th = `${t.threads} thread${t.threads > 1 ? 's' : ''}`;
        cell[`ours ÷ PyTorch ${th}`] = ratio(med(s.ms), med(t.ms));
        cell[`per round (${th})`] = paired(s.rounds, t.rounds);
        cell[`CPU-time ratio (${th})`] = ratio(med(s.cpuMs), med(t.cpuMs));
      }
      ratioRows.push(cell);
    }
    const h = ours.get(`${c.name}|host`);
    const x = ours.get(`${c.name}|trixie`);
    if (h && x)
      ratioRows.push({
        model: c.name,
        driver: `speed-up, newest over host: ${ratio(med(h.ms), med(x.ms))}× wall (per round ${paired(h.rounds, x.rounds)}×), ${ratio(med(h.cpuMs), med(x.cpuMs))}× CPU time`,
      });
  }
  const variantRows: BenchRow[] = [];
  for (const [name] of doMatmul ? variants : [])
    for (const s of shapes) {
      const gf = (ms: number) => (2 * s.M * s.N * s.K) / (ms * 1e6);
      const row: BenchRow = { variant: name, shape: s.name };
      const by: Record<string, number | null> = {};
      for (const d of drivers) {
        const e = matmul.get(`${name}|${s.name}|${d.key}`);
        const g = e?.rounds.length ? e.rounds.map(gf) : [];
        by[d.key] = med(g);
        row[`${d.key} GFLOP/s`] = g.length ? round(med(g)!, 2) : null;
        row[`${d.key} min–max`] = g.length ? range(g, 1) : (e?.check ?? null);
        row[`${d.key} GFLOP/CPU-s`] = e?.cpuRounds.length ? round(med(e.cpuRounds.map(gf))!, 2) : null;
      }
      row['newest ÷ host'] = ratio(by.trixie ?? null, by.host ?? null);
      variantRows.push(row);
    }
  /** The fastest variant per shape on a driver, by a column (wall or CPU-time rate). */
  const best = (key: string, col: 'GFLOP/s' | 'GFLOP/CPU-s') =>
    shapes.map((s) => {
      const c = `${key} ${col}`;
      const top = variantRows.filter((r) => r.shape === s.name && typeof r[c] === 'number').sort((a, b) => Number(b[c]) - Number(a[c]))[0];
      return `${s.name}: ${top ? `${top.variant} (${top[c]})` : '-'}`;
    });

  const env = {
    date: new Date().toISOString(),
    cpu: `${cpuModel()} × ${cpus().length}`,
    kernel: release(),
    rounds,
    minutes: round(minutes, 1),
    loadAverage1m: { median: round(load.median, 2), min: round(load.min, 2), max: round(load.max, 2), samples: load.n },
  };
  const notes = [
    `Rounds: ${rounds}; in each, every block of work ran on both drivers back to back (host first in odd rounds, the newest driver first in even ones), PyTorch right after. ms/step: Trainer.step wall time; medians over all timed steps, with min–max and the interquartile range.`,
    `Load average (1 min) during the run: median ${load.median.toFixed(1)}, ${load.min.toFixed(1)}–${load.max.toFixed(1)} (${load.n} samples, every 10 s; this lane itself adds ~1–2 on a 2-core machine). Under that load a single timing moves by up to ~2×; the ratios measured in the same round (per-round ranges) are the figures to trust, the absolute ms are not.`,
    "Ratios: ours ÷ PyTorch, each the median of ms/step over all rounds (time ratio: > 1 means ours is slower). Per round: the same ratio within each round, min–max. CPU-time ratio: the same with the process CPU time per step (all threads: lavapipe's two workers, PyTorch's and OpenBLAS's threads, which spin while waiting at 2 threads): what each step costs in CPU work, much less exposed to the load than wall time.",
  ];
  const results = {
    suite: 'mesa-lane',
    env,
    drivers: drivers.map((d) => ({ key: d.key, ...d.info, mesa: parseVersion(d.info.description, 'Mesa'), llvm: parseVersion(d.info.description, 'LLVM') })),
    train: Object.fromEntries(ours),
    torch: Object.fromEntries(torch),
    matmul: Object.fromEntries(matmul),
    tables: { drivers: driverRows, train: trainRows, ratios: ratioRows, variants: variantRows },
    fastest: { host: best('host', 'GFLOP/s'), trixie: best('trixie', 'GFLOP/s') },
    fastestByCpuTime: { host: best('host', 'GFLOP/CPU-s'), trixie: best('trixie', 'GFLOP/CPU-s') },
  };
  const md = [
    '# bench: mesa-lane (two lavapipe drivers in one session, vs PyTorch CPU)',
    '',
    `${env.date} · ${env.cpu} · Linux ${env.kernel} · ${rounds} rounds in ${env.minutes} min · load average (1 min) median ${load.median.toFixed(1)} (${load.min.toFixed(1)}–${load.max.toFixed(1)})`,
    '',
    'Written by `node bench/run.js mesa-lane` (bench/mesa-lane.ts); what the numbers say: docs/BENCHMARKS.md, "Newest Mesa lane".',
    '',
    '## drivers',
    '',
    markdownTable(driverRows),
    ...(doTrain ? ['## training step: ms/step', '', markdownTable(trainRows), '## ratios to PyTorch CPU, per driver', '', markdownTable(ratioRows)] : []),
    ...notes.map((n) => `- ${n}`),
    '',
    ...(doMatmul
      ? [
          '## matmul variant progression per driver (x·Wᵀ, f32)',
          '',
          markdownTable(variantRows),
          `- GFLOP/s: from each round's median of ${samples} samples (each sample: the same N products in one submit, then one wait); the median over rounds, and min–max. GFLOP/CPU-s: the same products per second of process CPU time (lavapipe runs 2 threads, so an idle machine's GFLOP/s is up to twice this). Variants: src/kernels/matmul-config.ts VARIANTS; what each changes: bench/results/matmul-variants.md.`,
          `- Fastest on host (wall): ${results.fastest.host.join('; ')}; by CPU time: ${results.fastestByCpuTime.host.join('; ')}.`,
          `- Fastest on the newest driver (wall): ${results.fastest.trixie.join('; ')}; by CPU time: ${results.fastestByCpuTime.trixie.join('; ')}.`,
          '',
        ]
      : []),
  ].join('\n');
  writeFileAtomic(join(RESULTS, 'mesa-lane.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileAtomic(join(RESULTS, 'mesa-lane.md'), md);
  console.log(md);
  log(`wrote bench/results/mesa-lane.{md,json} (${minutes.toFixed(1)} min)`);
  return 0;
}
