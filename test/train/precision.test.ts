/**
 * Mixed precision (precision.activations = 'f16'): f16 activations and matmul inputs, f32 master
 * weights / gradients / AdamW state, with dynamic loss scaling. Checked here: the f16 step tracks
 * the f32 step on the same weights and data, peak memory drops, parameter gradients stay f32,
 * and overflow skips interact with the isfinite guards as documented in src/optim/loss-scale.ts.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { testRuntime } from '../reference/gpu.ts';
import { parseConfig, type TrainConfig } from '../../src/train/config.ts';
import type { StepMetrics } from '../../src/train/step/trainer.ts';
import { readMetrics, runCli, scratch, startCli, tinyConfig, writeConfig } from './cli-helpers.ts';
import { setupTrainer } from './trainer-setup.ts';
import { expectClose } from '../reference/compare.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

const setup = (cfg: TrainConfig) => setupTrainer(rt, cfg);

/**
 * f16 vs f32 on the same weights and data (the first test): storage rounding of 2^-11 per
 * activation, compounded over 2 layers and 6 updates. Measured on lavapipe (TEST_MEASURE=<file>,
 * test/reference/compare.ts; fixed seeds): worst loss difference 2.1e-5 relative, worst gradient
 * norm difference 6.8e-5. Bounds ~10x: 3e-4 and 7e-4 (were 2% and 5%). A wrong cast or a lost
 * scale moves them by O(1).
 */
const LOSS_RTOL = 3e-4;
const NORM_RTOL = 7e-4;

async function train(cfg: TrainConfig, steps: number, B: number): Promise<StepMetrics[]> {
  const s = await setup(cfg);
  const out: StepMetrics[] = [];
  for (let i = 1; i <= steps; i++) {
    // What Trainer.step does, with a look at the gradients before resolve() frees them.
    const ps = s.trainer.record(i, [s.data.train.nextBatch(B)], { keepGrads: true });
    const dtypes = new Set(s.model.params.map((p) => p.grad?.dtype));
    expect([...dtypes], `step ${i} parameter gradient dtypes`).toEqual(['f32']);
    out.push(await s.trainer.resolve(ps));
  }
  s.dispose();
  return out;
}

describe('f16 activations', () => {
  it('track the f32 step on the same weights and data, with f32 parameter gradients', async () => {
    const f32 = await train(parseConfig(tinyConfig()), 6, 4);
    const f16 = await train(parseConfig(tinyConfig({ precision: { activations: 'f16', initialScale: 1024 } })), 6, 4);
    for (let i = 0; i < 6; i++) {
      const [a, b] = [f32[i]!, f16[i]!];
      expect(b.skipped, `step ${i + 1} skipped`).toBe(false);
      expect(b.lossScale).toBe(1024);
      expectClose([b.loss], [a.loss], { rtol: LOSS_RTOL, what: `step ${i + 1} f16 loss vs f32` });
      // The gradient norm is unscaled: close to f32's, never off by the scale 1024.
      expectClose([b.gradNorm], [a.gradNorm], { rtol: NORM_RTOL, what: `step ${i + 1} f16 grad norm vs f32` });
    }
    expect(f32.every((m) => m.lossScale === 1 && !m.overflow)).toBe(true);
  });

  it('lower the peak GPU bytes of a small-moe step to at most 0.6x of f32', async () => {
    const base = { model: { preset: 'small-moe' }, data: { source: { kind: 'synthetic', series: 4, length: 400, seed: 1 }, contextLength: 64, stride: 16 } };
    const peak = async (activations: 'f32' | 'f16') => {
      const cfg = parseConfig(tinyConfig({ ...base, schedule: { steps: 2, microBatch: 16 }, precision: { activations } }));
      const ms = await train(cfg, 2, 16);
      return ms[1]!.peakBytes;
    };
    const [p32, p16] = [await peak('f32'), await peak('f16')];
    expect(p16 / p32, `f16 peak ${p16} B vs f32 ${p32} B`).toBeLessThanOrEqual(0.6);
  });

  it('an overflow skips the step and halves the scale; a forward NaN is a bad step and leaves the scale alone', async () => {
    const cfg = parseConfig(
      tinyConfig({ precision: { activations: 'f16', initialScale: 1024, minScale: 256 }, stability: { injectNan: { step: 4, layer: 0, site: 'attn_out' } } }),
    );
    const s = await setup(cfg);
    const step = (i: number) => s.trainer.step(i, [s.data.train.nextBatch(4)]);
    expect((await step(1)).skipped).toBe(false);
    // A scale far past the f16 range: the scaled gradients overflow to Inf.
    s.trainer.scaler!.scale = 2 ** 40;
    const before = await Promise.all(s.model.params.map((p) => p.data.readF32()));
    const o = await step(2);
    expect([o.skipped, o.overflow, o.scaleEvent, o.lossScale]).toEqual([true, true, 'overflow', 2 ** 40]);
    expect(Number.isFinite(o.loss)).toBe(true); // the forward was clean
    expect(o.nonFinite[0]!.name).toMatch(/\.grad$/); // the overflowing gradient is named
    expect(s.trainer.scaler!.scale).toBe(2 ** 39);
    expect(s.opt.step).toBe(1);
    const after = await Promise.all(s.model.params.map((p) => p.data.readF32()));
    after.forEach((a, i) =>
      expect(Buffer.from(a.buffer).equals(Buffer.from(before[i]!.buffer)), `${s.model.params[i]!.name} changed on an overflow step`).toBe(true),
    );

    s.trainer.scaler!.scale = 1024;
    expect((await step(3)).skipped).toBe(false);
    expect(s.opt.step).toBe(2);
    // Step 4: NaN injected into a forward activation. Guards name it; not an overflow; scale kept.
    const bad = await step(4);
    expect([bad.skipped, bad.overflow, bad.scaleEvent]).toEqual([true, false, 'none']);
    expect(bad.nonFinite[0]!.name).toBe('model.layers.0.attn_out');
    expect(s.trainer.scaler!.scale).toBe(1024);
    expect((await step(5)).skipped).toBe(false);
    s.dispose();
  });

  it('a NaN born in backward halves the scale down to minScale, then counts as a bad step', async () => {
    const cfg = parseConfig(
      tinyConfig({
        precision: { activations: 'f16', initialScale: 1024, minScale: 256 },
        stability: { injectNan: { step: 1, untilStep: 4, layer: 1, site: 'grad' } },
      }),
    );
    const s = await setup(cfg);
    const events: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const m = await s.trainer.step(i, [s.data.train.nextBatch(4)]);
      expect(m.skipped).toBe(true);
      events.push(`${m.lossScale}:${m.scaleEvent}:${m.overflow}`);
    }
    expect(events).toEqual(['1024:overflow:true', '512:overflow:true', '256:overflow-at-min:false', '256:overflow-at-min:false']);
    s.dispose();
  });

  it('trains end to end through the CLI, logs the loss scale and saves it for --resume', async () => {
    const dir = scratch();
    const cfgPath = writeConfig(dir, tinyConfig({ precision: { activations: 'f16', initialScale: 4096, growthInterval: 2 } }));
    const r = await runCli(dir, ['--config', cfgPath, '--stop-after', '3']);
    expect(r.status, r.stderr).toBe(0);
    const r2 = await runCli(dir, ['--config', cfgPath, '--resume']);
    expect(r2.status, r2.stderr).toBe(0);
    const train = readMetrics(dir).filter((m) => m.kind === 'train');
    expect(train.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // growthInterval 2: the scale doubles every two clean steps, and the count survives the resume.
    expect(train.map((m) => m.lossScale)).toEqual([4096, 4096, 8192, 8192, 16384, 16384]);
    expect(train.every((m) => m.skipped === false && typeof m.loss === 'number' && Number.isFinite(m.loss))).toBe(true);
  });

  it('a device without shader-f16 (SwiftShader) refuses it through the CLI: exit 2, naming the feature and the fix', async (ctx) => {
    // SwiftShader is the device without shader-f16 reachable here (Debian's chromium package); that
    // f32 trains there is scripts/implementations.ts's same-loss check (docs/IMPLEMENTATIONS.md).
    const icd = process.env.SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
    if (!existsSync(icd)) ctx.skip(`${icd} not found: no device without shader-f16 to try (scripts/setup.sh installs chromium)`);
    const dir = scratch();
    const cfgPath = writeConfig(dir, tinyConfig({ precision: { activations: 'f16' } }));
    // Asynchronous, so the test worker keeps answering vitest while SwiftShader starts.
    const r = await startCli(dir, ['--config', cfgPath], { VK_ICD_FILENAMES: icd }).exited;
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/adapter: google swiftshader.*f16=false/);
    expect(r.stderr).toMatch(/^error: this device has no shader-f16: precision\.activations=f16 .* use precision\.activations=f32$/m);
    expect(existsSync(join(dir, 'runs/t/metrics.jsonl'))).toBe(false);
  });
});
