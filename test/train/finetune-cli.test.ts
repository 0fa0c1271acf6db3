/**
 * The classifier case through the CLI, as a user runs it: train a tiny forecaster, export it
 * (export.js), then train a 280-class head on its backbone with `--set model.init.from=<folder>`,
 * the backbone frozen (optim.freeze) or LoRA-adapted (optim.lora). The backbone in the final
 * checkpoint must be bit for bit the exported one: it was loaded, and it did not move.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSafetensors } from '../../src/train/persist/safetensors.ts';
import { runCli, scratch, tinyConfig, setArgs } from './cli-helpers.ts';
import { spawnAsync } from '../support/spawn.ts';

const EXPORT_JS = resolve(import.meta.dirname, '..', '..', 'export.js');
const MODEL = { preset: 'small-moe', hidden: 32, heads: 2, experts: 4, topK: 2, moeIntermediate: 16, sharedIntermediate: 32 };

function classifier(dir: string): Record<string, unknown> {
  return {
    seed: 4,
    model: { ...MODEL, task: 'classify', numClasses: 280 },
    data: { source: { kind: 'synthetic-classes', classes: 280, seriesPerClass: 1 }, contextLength: 24, validFraction: 0.5 },
    optim: { lr: 3e-3 },
    schedule: { steps: 3, microBatch: 8 },
    logging: { dir, validEvery: 0, validBatches: 2, progress: 'plain' },
  };
}

let d: string;
beforeAll(async () => {
  d = scratch();
  writeFileSync(
    join(d, 'forecaster.json'),
    JSON.stringify(tinyConfig({ model: { ...MODEL, horizons: [1, 4] }, schedule: { steps: 2, microBatch: 4 }, checkpoint: { every: 0, keep: 1 } })),
  );
  const t = await runCli(d, ['--config', 'forecaster.json']);
  expect(t.status, t.stderr).toBe(0);
  const e = await spawnAsync(process.execPath, [EXPORT_JS, '--checkpoint', 'runs/t', '--out', 'pretrained'], {
    cwd: d,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  expect(e.status, e.stderr).toBe(0);
  writeFileSync(join(d, 'classifier.json'), JSON.stringify(classifier('runs/cls')));
});

/** The final checkpoint's tensors beside the exported backbone's: equal bit for bit, and the head trained. */
async function expectBackboneKept(run: string, extra: (name: string) => boolean): Promise<void> {
  const pre = (await readSafetensors(join(d, 'pretrained', 'model.safetensors'))).tensors;
  const got = (await readSafetensors(join(d, run, 'checkpoints', 'step-3', 'model.safetensors'))).tensors;
  const backbone = [...pre.keys()].filter((n) => !n.startsWith('lm_heads.'));
  expect(backbone.length).toBeGreaterThan(40);
  const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  for (const n of backbone) expect(bytes(got.get(n)!.data).equals(bytes(pre.get(n)!.data)), `${n} differs from the exported backbone`).toBe(true);
  const rest = [...got.keys()].filter((n) => !pre.has(n));
  expect(rest.filter((n) => !n.startsWith('classifier.') && !extra(n))).toEqual([]);
  expect(got.get('classifier.weight')!.shape).toEqual([280, 32]);
}

describe('train.js: a 280-class head on an exported backbone', () => {
  it('frozen backbone (optim.freeze ["backbone"])', async () => {
    const r = await runCli(d, [
      '--config',
      'classifier.json',
      ...setArgs('model.init.from=pretrained', 'optim.freeze=["backbone"]', 'logging.dir=runs/frozen'),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `[init] weights from Hugging Face Time-MoE folder ${join(d, 'pretrained')}: the backbone (the 280-class head starts from its init)`,
    );
    expect(r.stderr).toMatch(/\[model\] [\d,]+ parameters \(9,240 trainable: frozen backbone\)/); // 280 x 32 + 280
    expect(r.stderr).toMatch(/\[valid\] after training: loss [\d.]+ \(cross-entropy [\d.]+ accuracy [\d.]+\)/);
    await expectBackboneKept('runs/frozen', () => false);
  });

  it('LoRA-adapted backbone (optim.lora + optim.freeze ["backbone"]), stopped and resumed', async () => {
    const lora = '{"rank":2,"alpha":4,"targets":["q_proj","v_proj","gate_proj","up_proj","down_proj"]}';
    const args = [
      '--config',
      'classifier.json',
      ...setArgs('model.init.from=pretrained', 'optim.freeze=["backbone"]', `optim.lora=${lora}`, 'logging.dir=runs/lora'),
    ];
    const first = await runCli(d, [...args, '--stop-after', '2']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('LoRA adapters start at B = 0');
    expect(first.stderr).toMatch(/trainable: frozen backbone; LoRA rank 2 alpha 4 on q_proj, v_proj, gate_proj, up_proj, down_proj\)/);
    const rest = await runCli(d, [...args, '--resume']);
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stderr).toContain('continuing after step 2');
    await expectBackboneKept('runs/lora', (n) => /\.lora_[AB]\.weight$/.test(n));
  });

  it('bad fine-tuning settings: exit 2, naming the key and the fix', async () => {
    let r = await runCli(d, ['--config', 'classifier.json', '--set', 'optim.freeze=["attn"]']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'optim.freeze.0: expected one of "embedding", "attention", "norm", "router", "experts", "shared_expert", "head", "backbone", got "attn"',
    );
    r = await runCli(d, ['--config', 'classifier.json', '--set', 'optim.freeze=["backbone","head"]']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('freezes every parameter, so nothing would train');
    // The classifier's backbone must still match the folder's: one line per difference.
    r = await runCli(d, ['--config', 'classifier.json', '--set', 'model.init.from=pretrained', '--set', 'model.hidden=16', '--set', 'model.heads=2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('model.hidden is 16 but config.json has hidden_size = 32');
  });
});
