/**
 * The non-finite guard: a NaN injected into one layer's activation skips the update (weights and
 * AdamW state bit-identical), names that layer first, is logged as NaN (never 0), and K bad steps
 * in a row stop the run with the last good weights checkpointed.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { testRuntime } from '../reference/gpu.ts';
import { parseConfig } from '../../src/train/config.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import type { AdamW } from '../../src/optim/adamw.ts';
import { readSafetensors } from '../../src/train/persist/safetensors.ts';
import { stateDict } from '../../src/model/state-dict.ts';
import { readMetrics, runCli, scratch, tinyConfig, writeConfig } from './cli-helpers.ts';
import { setupTrainer } from './trainer-setup.ts';

let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

async function snapshot(model: TimeMoeModel, opt: AdamW): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const p of model.params) {
    out.push(await p.data.readF32());
    const s = opt.state.get(p)!;
    out.push(await s.m.readF32(), await s.v.readF32());
  }
  return out;
}

describe('isfinite guards', () => {
  it('skip the step, keep weights and optimizer state bit-identical, and name the injected layer first', async () => {
    const cfg = parseConfig(tinyConfig({ stability: { injectNan: { step: 2, layer: 1, site: 'ffn_out' } } }));
    const { data, model, opt, trainer, dispose } = await setupTrainer(rt, cfg);

    const s1 = await trainer.step(1, [data.train.nextBatch(4)]);
    expect(s1.skipped).toBe(false);
    expect(opt.step).toBe(1);
    const before = await snapshot(model, opt);

    const s2 = await trainer.step(2, [data.train.nextBatch(4)]);
    expect(s2.skipped).toBe(true);
    expect(Number.isNaN(s2.loss)).toBe(true);
    expect(s2.nonFinite[0]!.name).toBe('model.layers.1.ffn_out');
    expect(s2.nonFinite[0]!.layer).toBe(1);
    // Layer 0 was clean: nothing of it is reported before layer 1.
    expect(s2.nonFinite.some((b) => b.name.startsWith('model.layers.0.') && !b.name.endsWith('.grad'))).toBe(false);
    expect(opt.step).toBe(1);
    const after = await snapshot(model, opt);
    after.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(before[i]!.buffer)), `tensor ${i} changed on a skipped step`).toBe(true));

    const s3 = await trainer.step(3, [data.train.nextBatch(4)]);
    expect(s3.skipped).toBe(false);
    expect(Number.isFinite(s3.loss)).toBe(true);
    expect(opt.step).toBe(2);
    dispose();
  });

  it('a NaN born in backward (no forward tensor bad) is caught by the norm and named by its gradient', async () => {
    const cfg = parseConfig(tinyConfig({ stability: { injectNan: { step: 2, layer: 1, site: 'grad' } } }));
    const { data, model, opt, trainer, dispose } = await setupTrainer(rt, cfg);
    expect((await trainer.step(1, [data.train.nextBatch(4)])).skipped).toBe(false);
    const before = await snapshot(model, opt);
    const s2 = await trainer.step(2, [data.train.nextBatch(4)]);
    expect(s2.skipped).toBe(true);
    expect(Number.isFinite(s2.loss)).toBe(true); // the forward was clean
    expect(Number.isNaN(s2.gradNorm)).toBe(true);
    const first = model.params.find((p) => p.layer === 1)!;
    expect(s2.nonFinite[0]!.name).toBe(`${first.name}.grad`);
    const after = await snapshot(model, opt);
    after.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(before[i]!.buffer)), `tensor ${i} changed on a skipped step`).toBe(true));
    expect((await trainer.step(3, [data.train.nextBatch(4)])).skipped).toBe(false);
    dispose();
  });

  it('through the CLI: logs NaN as "NaN" (never 0), then stops after K bad steps with the last good weights saved', async () => {
    const d = scratch();
    const cfg = tinyConfig({
      schedule: { steps: 8, warmupSteps: 1, microBatch: 4 },
      stability: { maxConsecutiveBadSteps: 2, injectNan: { step: 3, untilStep: 8, layer: 0, site: 'router_logits' } },
      // A checkpoint after step 2 too: the stop's checkpoint must hold exactly its weights.
      checkpoint: { every: 2, keep: 2 },
    });
    const r = await runCli(d, ['--config', writeConfig(d, cfg)]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[guard\] step 3 skipped .*model\.layers\.0\.router_logits/);
    // With every value NaN the guard says so, instead of "finite min NaN max NaN mean NaN" (issue 14 item 10).
    expect(r.stderr).toMatch(/model\.layers\.0\.router_logits \(layer 0\): \d+ non-finite values; no finite value at all/);
    expect(r.stderr).not.toMatch(/finite min NaN/);
    expect(r.stdout).toMatch(
      /^stopped: 2 consecutive non-finite steps \(stability\.maxConsecutiveBadSteps 2\) at step 4\. The last good weights are saved at runs\/t\/checkpoints\/step-4 \(continue with --resume\)\. First bad tensor: .*Fix: check the data for NaN\/Inf/,
    );
    const lines = readFileSync(join(d, 'runs/t/metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"kind":"train"'));
    const step3 = lines.find((l) => l.includes('"step":3,'))!;
    expect(step3).toContain('"loss":"NaN"');
    expect(step3).not.toMatch(/"loss":0[,}]/);
    const m = readMetrics(d).filter((x) => x.kind === 'train');
    expect(m.map((x) => x.skipped)).toEqual([false, false, true, true]);

    // The checkpoint written at the stop holds the weights after step 2 (steps 3-4 were
    // skipped): bit-identical to the step-2 checkpoint, AdamW moments included, and trained.
    const dir = join(d, 'runs/t/checkpoints');
    const [at2, at4] = [await readSafetensors(join(dir, 'step-2/model.safetensors')), await readSafetensors(join(dir, 'step-4/model.safetensors'))];
    const [opt2, opt4] = [await readSafetensors(join(dir, 'step-2/optimizer.safetensors')), await readSafetensors(join(dir, 'step-4/optimizer.safetensors'))];
    for (const [a, b, what] of [
      [at2, at4, 'model'],
      [opt2, opt4, 'optimizer'],
    ] as const) {
      expect([...b.tensors.keys()], what).toEqual([...a.tensors.keys()]);
      for (const [name, t] of b.tensors)
        expect(
          Buffer.from(t.data.buffer).equals(Buffer.from(a.tensors.get(name)!.data.buffer)),
          `${what} ${name}: step-4 checkpoint != step-2 checkpoint`,
        ).toBe(true);
    }
    const model = new TimeMoeModel(rt, parseConfig(cfg).model, 3);
    const fresh = await stateDict(model.params);
    let differs = 0;
    for (const [name, t] of at4.tensors) {
      expect(Array.from(t.data).every(Number.isFinite), `${name} is finite`).toBe(true);
      if (!Buffer.from(t.data.buffer).equals(Buffer.from(fresh.get(name)!.data.buffer))) differs++;
    }
    expect(differs).toBeGreaterThan(0); // two good steps did train
    model.dispose();
  });
});
