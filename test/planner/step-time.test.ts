/**
 * The plan's step time and schedule: the host AdamW rate measured once per machine and cached (or
 * given with --host-adamw-rate), the compute assumption every GPU target states (f32 FMA, no
 * tensor cores), the whole schedule's time and tokens/s, and the two verdicts through the CLI.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/train/config.ts';
import { loadConfig } from '../../src/train/config-file.ts';
import { planRun } from '../../src/train/plan/planner.ts';
import { formatPlan } from '../../src/train/plan/format.ts';
import { COMPUTE_UNITS, estimateStepTime, hostAdamWRate, machineKey, measureHostAdamW, type StepTime } from '../../src/train/plan/step-time.ts';
import { GIB, namedTarget, TARGET_NAMES } from '../../src/train/plan/targets.ts';
import { planCli } from './plan-cli.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'wmoe-steptime-'));

describe('the host AdamW rate', () => {
  it('is measured once per machine, cached, and read back unchanged; another thread count is another machine', () => {
    const path = join(scratch(), 'cache', 'host-adamw.json');
    const first = hostAdamWRate({ cachePath: path, threads: 2 });
    expect(first.source).toBe('measured');
    expect(first.parametersPerSecond).toBeGreaterThan(0);
    expect(first.perThread! * 2).toBe(first.parametersPerSecond);
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { perThread: number; runs: number[]; threads: number }>;
    const entry = file[machineKey(2)]!;
    expect(entry.perThread).toBe(first.perThread);
    expect(entry.threads).toBe(2);
    // The median of the runs.
    expect(entry.runs).toHaveLength(9);
    expect(entry.perThread).toBe([...entry.runs].sort((a, b) => a - b)[4]);
    expect(first.note).toMatch(/measured now on this machine .* cached in .*host-adamw\.json: .*median of 9 runs.*--host-adamw-rate/);

    const again = hostAdamWRate({ cachePath: path, threads: 2 });
    expect(again.source).toBe('cached');
    expect(again.parametersPerSecond).toBe(first.parametersPerSecond);
    expect(again.note).toMatch(/measured on this machine .* on \d{4}-\d\d-\d\d, cached in .* \(delete it to measure again\)/);

    const four = hostAdamWRate({ cachePath: path, threads: 4 });
    expect(four.source).toBe('measured');
    const both = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(both).sort()).toEqual([machineKey(2), machineKey(4)].sort());
  });

  it('a cache that does not parse is measured again and rewritten; a cache that cannot be written says so', () => {
    const dir = scratch();
    const path = join(dir, 'host-adamw.json');
    writeFileSync(path, '{"cut off');
    const r = hostAdamWRate({ cachePath: path, threads: 1 });
    expect(r.source).toBe('measured');
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')) as object)).toEqual([machineKey(1)]);
    // A file where the cache folder should be.
    writeFileSync(join(dir, 'blocker'), '');
    const blocked = hostAdamWRate({ cachePath: join(dir, 'blocker', 'host-adamw.json'), threads: 1 });
    expect(blocked.source).toBe('measured');
    expect(blocked.parametersPerSecond).toBeGreaterThan(0);
    expect(blocked.note).toMatch(/not cached \(.*blocker.*\)/);
  });

  it('--host-adamw-rate is used as given, and nothing is measured or written', () => {
    const path = join(scratch(), 'host-adamw.json');
    const r = hostAdamWRate({ given: 250e6, cachePath: path, threads: 16 });
    expect(r).toMatchObject({ parametersPerSecond: 250e6, threads: 16, perThread: null, source: 'given' });
    expect(r.note).toMatch(/given with --host-adamw-rate: 250 M parameters\/s/);
    expect(existsSync(path)).toBe(false);
  });

  it('one measurement is the median of its runs, each of them positive and finite', () => {
    const m = measureHostAdamW({ runs: 5, runMs: 20, elements: 1 << 16 });
    expect(m.runs).toHaveLength(5);
    for (const r of m.runs) expect(Number.isFinite(r) && r > 0).toBe(true);
    expect(m.perThread).toBe([...m.runs].sort((a, b) => a - b)[2]);
  });
});

describe('the step time on every GPU target', () => {
  // TimeMoE-50M with the optimizer offloaded: a host part, and plans in about a second each.
  const cfg = parseConfig(loadConfig('timemoe-50m-3090.json'), '(test)', ['optim.offload=host', 'logging.metricsEvery=1', 'schedule.steps=2500']);
  const rate = hostAdamWRate({ given: 100e6, threads: 8 });
  const gpus = TARGET_NAMES.filter((n): n is Exclude<(typeof TARGET_NAMES)[number], 'this' | 'lavapipe'> => n !== 'this' && n !== 'lavapipe');
  const times = new Map<string, StepTime>();
  for (const name of gpus) {
    const target = namedTarget(name);
    times.set(name, estimateStepTime(planRun(cfg, { target, hostBytes: 64 * GIB, suggestions: false }), target, rate)!);
  }

  it('states f32 FMA without tensor cores for each card, and uses its f32 peak, never the tensor-core one', () => {
    for (const name of gpus) {
      const t = times.get(name)!;
      const peak = namedTarget(name).peak!;
      expect(t.compute.units, name).toBe(COMPUTE_UNITS);
      expect(formatPlan(planRun(cfg, { target: namedTarget(name), hostBytes: 64 * GIB, suggestions: false }), t)).toContain(
        `Step time on ${name} (f32 FMA, no tensor cores): ~`,
      );
      if (t.compute.basis === 'assumption') {
        expect(t.compute.flopsPerSecond, name).toBeCloseTo(0.2 * peak.f32, -6);
        expect(t.compute.note).toContain(`f32 FMA peak (${peak.source})`);
        expect(t.compute.note).toMatch(/f16 tensor-core peak does not apply/);
      }
      expect(t.compute.flopsPerSecond, name).toBeLessThanOrEqual(peak.f32);
    }
    // So the A100 (19.5 TFLOP/s f32) plans slower than the 3090 (35.6), and says why.
    const a100 = times.get('a100-80')!;
    const rtx = times.get('rtx-3090')!;
    if (a100.compute.basis === 'assumption' && rtx.compute.basis === 'assumption')
      expect(a100.compute.seconds / rtx.compute.seconds).toBeCloseTo(35.6 / 19.5, 6);
  });

  it('the same host rate for every card: cards of one f32 peak and link plan the same step (H100 and H200)', () => {
    const h100 = times.get('h100-80')!;
    const h200 = times.get('h200')!;
    expect(h100.host!.parametersPerSecond).toBe(100e6);
    expect(h200.host!.seconds).toBe(h100.host!.seconds);
    if (h100.compute.basis === 'assumption' && h200.compute.basis === 'assumption') expect(h200.seconds).toBe(h100.seconds);
  });

  it('the schedule: schedule.steps x the step time, its tokens and tokens/s', () => {
    for (const t of times.values()) {
      expect(t.schedule.steps).toBe(2500);
      expect(t.schedule.seconds).toBeCloseTo(2500 * t.seconds, 6);
      expect(t.schedule.tokens).toBe(2500 * t.tokensPerStep);
      expect(t.schedule.tokensPerSecond).toBeCloseTo(t.tokensPerStep / t.seconds, 6);
      expect(t.seconds).toBe(t.compute.seconds + Math.max(t.transfer!.seconds, t.host!.seconds));
    }
  });
});

describe('train.js --plan: two verdicts, the schedule and the rate, as JSON', () => {
  interface PlanJson {
    deviceFits: boolean;
    hostFits: boolean | null;
    host: { totalBytes: number; availableBytes: number; availableFrom: string };
    stepTime: StepTime;
  }
  const cache = scratch();
  const plan = (...extra: string[]) => planCli(['--config', 'timemoe-2.4b-3090.json', '--plan', ...extra], { WEBGPU_MOE_CACHE: cache });

  it('--host-gb too small for the offloaded optimizer: exit 2 although the card fits', async () => {
    const r = await plan('--json', '--host-gb', '16', '--host-adamw-rate', '200');
    expect(r.status, r.stderr).toBe(2);
    const p = JSON.parse(r.stdout) as PlanJson;
    expect(p.deviceFits).toBe(true);
    expect(p.hostFits).toBe(false);
    expect(p.host.availableFrom).toBe('--host-gb');
    // The rate as given: 2,416,545,792 parameters at 200 M/s.
    expect(p.stepTime.host!.source).toBe('given');
    expect(p.stepTime.host!.seconds).toBeCloseTo(2_416_545_792 / 200e6, 9);
    expect(p.stepTime.schedule.steps).toBe(10_000);
    expect(p.stepTime.schedule.seconds).toBeCloseTo(10_000 * p.stepTime.seconds, 3);
  });

  it("without --host-gb the host is this machine's RAM, a warning: exit 0 when the card fits", async () => {
    const r = await plan();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Verdict: FITS/m);
    const needed = 27.13 * GIB;
    expect(r.stdout).toMatch(totalmem() >= needed ? /^Host verdict: FITS .*this machine's RAM/m : /^Host verdict: WARNING - .*--host-gb <its RAM in GiB>/m);
    expect(r.stdout).toMatch(/^Schedule: 10,000 steps x ~[\d.]+ s = ~[\d.]+ days for 655\.4 M tokens, ~[\d,]+ tokens\/s/m);
  });

  it('two plans on one machine use the one cached rate: the same step time to the bit', async () => {
    const a = JSON.parse((await plan('--json', '--host-gb', '64')).stdout) as PlanJson;
    const b = JSON.parse((await plan('--json', '--host-gb', '64', '--target', 'h200')).stdout) as PlanJson;
    const c = JSON.parse((await plan('--json', '--host-gb', '64')).stdout) as PlanJson;
    expect(existsSync(join(cache, 'host-adamw.json'))).toBe(true);
    expect(c.stepTime.host!.source).toBe('cached');
    expect(c.stepTime.seconds).toBe(a.stepTime.seconds);
    expect(b.stepTime.host!.parametersPerSecond).toBe(a.stepTime.host!.parametersPerSecond);
  });

  it('a training run refuses a host that does not fit, before it writes anything', async () => {
    const dir = scratch();
    const r = await planCli([
      '--config',
      'small-moe.json',
      '--set',
      'optim.offload=host',
      '--set',
      'logging.metricsEvery=1',
      '--set',
      `logging.dir=${join(dir, 'run')}`,
      '--host-gb',
      '0.001',
    ]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^error: the offloaded optimizer does not fit the host memory \(--host-gb\)/m);
    expect(r.stderr).toMatch(/^Host verdict: DOES NOT FIT/m);
    expect(existsSync(join(dir, 'run'))).toBe(false);
  });

  it('--host-adamw-rate without --plan is refused', async () => {
    const r = await planCli(['--config', 'small-moe.json', '--host-adamw-rate', '100']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--host-adamw-rate is for the --plan step time: pass it with --plan/);
  });
});
