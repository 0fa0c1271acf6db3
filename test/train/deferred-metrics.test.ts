/**
 * logging.metricsEvery > 1: steps are recorded ahead of their metrics readback. The AdamW step
 * count and the loss scale live on the GPU, so the run must be bit-identical to reading every
 * step, skipped steps included; and the CLI flushes before checkpoints, so --resume still works.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMetrics, runCli, scratch, tinyConfig, writeConfig } from './cli-helpers.ts';

async function run(metricsEvery: number, extra: Record<string, unknown> = {}) {
  const dir = scratch();
  const cfg = tinyConfig({ logging: { dir: 'runs/t', validEvery: 0, validBatches: 2, progress: 'plain', metricsEvery }, ...extra });
  const r = await runCli(dir, ['--config', writeConfig(dir, cfg)]);
  expect(r.status, r.stderr).toBe(0);
  const train = readMetrics(dir).filter((m) => m.kind === 'train');
  const weights = readFileSync(join(dir, 'runs/t/checkpoints/step-6/model.safetensors'));
  return { train, weights, stderr: r.stderr };
}

describe('logging.metricsEvery', () => {
  it('reading metrics every 4 steps gives the same run as every step, with a skipped step and f16 loss scaling', async () => {
    const extra = {
      stability: { injectNan: { step: 2, layer: 1, site: 'ffn_out' } },
      precision: { activations: 'f16', initialScale: 1024, growthInterval: 2 },
    };
    const a = await run(1, extra);
    const b = await run(4, extra);
    const pick = (m: Record<string, unknown>) => [m.step, m.loss, m.gradNorm, m.skipped, m.lossScale, m.scaleEvent];
    expect(b.train.map(pick)).toEqual(a.train.map(pick));
    expect(a.train[1]!.skipped).toBe(true); // the injected NaN
    expect(a.train.filter((m) => m.skipped).length).toBe(1);
    // The final weights are bit-identical: bias correction counted the skipped step out on the GPU.
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.stderr).toContain('[guard] step 2 skipped');
  });
});
