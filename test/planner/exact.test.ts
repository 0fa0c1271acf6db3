/**
 * Plans are exact: the planner records the real step on the meta runtime with this device's caps,
 * and the peak it plans equals, to the byte, the pool peak that a real run on lavapipe reports in
 * metrics.jsonl — for every path that allocates differently (dtypes, recompute, heads, capacity,
 * accumulation, deferred metrics, aux convention, frozen groups, LoRA; guards and metric buffers included).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { parseConfig, type TrainConfig } from '../../src/train/config.ts';
import { planRun } from '../../src/train/plan/planner.ts';
import { runTraining } from '../../src/train/run/run.ts';
import { thisTarget } from '../../src/train/plan/targets.ts';
import { noF16Reason, testRuntime } from '../reference/gpu.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
  rt.poison = false; // runTraining's own runtime: poisoning would add fill dispatches, not bytes
});

function config(over: Record<string, unknown>, steps: number): TrainConfig {
  const base = {
    model: { preset: 'small-moe', hidden: 32, heads: 2, moeIntermediate: 48, sharedIntermediate: 64, horizons: [1, 4] },
    data: { source: { kind: 'synthetic', series: 6, length: 400, seed: 3 }, contextLength: 48, stride: 24 },
    optim: { lr: 1e-3 },
    schedule: { steps, microBatch: 3 },
    loss: { zCoef: 1e-3 },
    logging: { dir: mkdtempSync(join(tmpdir(), 'plan-exact-')), validEvery: 0, validBatches: 1, progress: 'none' },
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) merged[k] = { ...(base as Record<string, object>)[k], ...(v as object) };
  return parseConfig(merged);
}

const CASES: [string, Record<string, unknown>][] = [
  ['f32', {}],
  ['f16 activations', { precision: { activations: 'f16' } }],
  ['recompute', { schedule: { recompute: true } }],
  ['f16 + recompute', { precision: { activations: 'f16' }, schedule: { recompute: true } }],
  [
    'classifier head',
    { model: { task: 'classify', numClasses: 3 }, data: { source: { kind: 'synthetic-classes', classes: 3, seriesPerClass: 3 }, contextLength: 48 } },
  ],
  ['capacity factor 1.0', { model: { capacityFactor: 1.0 } }],
  ['accumulation 2', { schedule: { accumulation: 2 } }],
  ['metricsEvery 4', { logging: { metricsEvery: 4 } }],
  ['switch aux convention', { loss: { auxConvention: 'switch' } }],
  ['guards off', { stability: { guards: false } }],
  ['optim.freeze attention + embedding', { optim: { freeze: ['attention', 'embedding'] } }],
  [
    'optim.lora on every target, backbone frozen',
    { optim: { freeze: ['backbone'], lora: { rank: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] } } },
  ],
];

describe(`planned peak == measured peak (${process.env.WEBGPU_MOE_KERNELS ?? 'adapter'} kernel family)`, () => {
  for (const [name, over] of CASES) {
    it(name, async (ctx) => {
      const every = (over.logging as { metricsEvery?: number } | undefined)?.metricsEvery ?? 1;
      const cfg = config(over, Math.max(3, 2 * every));
      if (cfg.precision.activations === 'f16' && !rt.caps.f16) {
        // Without shader-f16 the plan refuses the config as the run does (exit 2), naming the fix.
        expect(() => planRun(cfg, { target: thisTarget(rt.caps) })).toThrow(/this device has no shader-f16: .* use precision\.activations=f32/);
        ctx.skip(`${noF16Reason(rt)}: its refusal was checked, the peak cannot be`);
      }
      const plan = planRun(cfg, { target: thisTarget(rt.caps) });
      expect(plan.target.family).toBe(rt.caps.family);
      await runTraining(cfg, { resume: false, target: thisTarget(rt.caps), cwd: '/', budgetBytes: undefined });
      const steps = readFileSync(join(cfg.logging.dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; step: number; peakBytes: number })
        .filter((m) => m.kind === 'train');
      expect(steps.length).toBe(cfg.schedule.steps);
      // Steps 2 and 3 as the issue asks, and every step of the measured (second) window.
      const measured = steps.filter((m) => m.step === 2 || m.step === 3 || m.step > every);
      for (const m of measured) expect(m.peakBytes, `step ${m.step}`).toBe(plan.peakBytes);
    });
  }
});
