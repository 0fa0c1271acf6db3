/**
 * Hugging Face Time-MoE interop, both ways, against the PyTorch reference (fixtures written by
 * scripts/golden/make_hf_fixtures.py, so no PyTorch is needed here):
 *   (a) folders PyTorch wrote (F32, BF16, F16 weights) load and give PyTorch's predictions, first
 *       training loss (train.js with model.init.from) and autoregressive forecast (forecast.js);
 *   (b) export.js writes, from our checkpoint test/fixtures/hf/finetuned, exactly the bytes that
 *       PyTorch loaded with strict names (SHA-256 recorded in export-check.json), and our model
 *       predicts what PyTorch predicted from them.
 *
 * Tolerances: PyTorch computed in float64 from exactly the stored weights (BF16/F16 widen to f32
 * exactly, so every dtype has the same floor); our engine runs in f32. The golden test's stated
 * floor for an f32 forward of this model family is ~5e-7 relative (test/model/golden.test.ts);
 * measured here: losses 6e-8..1.5e-7 absolute, forecasts 1.6e-7..3.4e-7 of the window scale after
 * three autoregressive passes. We allow 1e-5 (losses; predictions relative to the largest) and
 * 1e-5 x the window scale (forecasts, in original units): ~30x the floor, while a wrong head, a
 * missed de-normalisation or a transposed weight moves them by 1e-2 or more.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Backend } from '../../src/kernels/tensor.ts';
import { Graph } from '../../src/autograd/graph.ts';
import { Var } from '../../src/autograd/variable.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { loadSourceWeights, resolveModelSource } from '../../src/train/interop/model-source.ts';
import { normalise, windowStats } from '../../src/forecast/data.ts';
import { testRuntime } from '../reference/gpu.ts';
import { expectClose } from '../reference/compare.ts';
import { scratch } from '../train/cli-helpers.ts';
import { node } from '../support/spawn.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIX = join(ROOT, 'test', 'fixtures', 'hf');
const DTYPES = ['f32', 'bf16', 'f16'] as const;

interface Outputs {
  train_loss: number;
  valid_loss: number;
  predictions: Record<string, number[]>;
  forecast: number[];
  forecast_scale: number;
}
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as {
  context_length: number;
  horizon: number;
  series: number[];
  dtypes: Record<(typeof DTYPES)[number], Outputs>;
};
const exportCheck = JSON.parse(readFileSync(join(FIX, 'export-check.json'), 'utf8')) as Outputs & {
  model_safetensors_sha256: string;
  config_json_sha256: string;
};
const T = expected.context_length;
const H = expected.horizon;

/** A scratch copy of the fixture folder, so runs write nothing into the repository. */
function workdir(): string {
  const d = scratch();
  cpSync(FIX, d, { recursive: true });
  return d;
}

function forecastColumn(csvPath: string): number[] {
  const [head, ...lines] = readFileSync(csvPath, 'utf8').trim().split('\n');
  const col = head!.split(',').indexOf('forecast');
  return lines.map((l) => Number(l.split(',')[col]));
}

/** Every value finite and within `tol` (absolute, original units) of PyTorch's. */
function expectWithin(actual: number[], ref: number[], tol: number, what: string): void {
  expect(actual.length, what).toBe(ref.length);
  expect(actual.every(Number.isFinite), `${what}: non-finite value`).toBe(true);
  const worst = Math.max(...actual.map((a, i) => Math.abs(a - ref[i]!)));
  expect(worst, `${what}: max |ours - PyTorch|`).toBeLessThanOrEqual(tol);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

let rt: Backend;
beforeAll(async () => {
  rt = await testRuntime();
});

describe('(a) a folder PyTorch wrote', () => {
  for (const dt of DTYPES) {
    it(`${dt}: loads and predicts every head as PyTorch does`, async () => {
      const source = await resolveModelSource(join(FIX, `tiny-${dt}`));
      expect(source.kind).toBe('hf');
      const model = new TimeMoeModel(rt, source.model, 1);
      await loadSourceWeights(source, model.params);
      const series = Float64Array.from(expected.series);
      const inputs = normalise(series, 0, T, windowStats('window', series, 0, T, { mean: 0, std: 0 }));
      const g = new Graph(false);
      const x = g.adopt(new Var(rt.upload(inputs, [T, 1], 'f32', 'inputs'), false, 'inputs'));
      const out = g.run(() => model.forward(x, { batch: 1, seqLen: T }));
      const e = expected.dtypes[dt];
      for (const [n, h] of source.model.horizons.entries())
        expectClose(await out.predictions[n]!.data.readF32(), e.predictions[String(h)]!, { rtol: 1e-5, relativeToMax: true, what: `${dt} predictions h=${h}` });
      g.dispose();
      model.dispose();
    });
  }

  for (const dt of ['f32', 'bf16'] as const) {
    it(`${dt}: train.js with model.init.from logs PyTorch's validation loss before training and its first training loss`, async () => {
      const d = workdir();
      const r = await node('train.js', ['--config', 'finetune.json', '--set', `model.init.from=tiny-${dt}`], d);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`[init] weights from Hugging Face Time-MoE folder ${join(d, `tiny-${dt}`)}`);
      const m = readFileSync(join(d, 'runs/finetune/metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; step: number; loss: number });
      const e = expected.dtypes[dt];
      expectClose([m.find((x) => x.kind === 'valid' && x.step === 0)!.loss], [e.valid_loss], { rtol: 1e-5, what: 'valid loss before training' });
      expectClose([m.find((x) => x.kind === 'train' && x.step === 1)!.loss], [e.train_loss], { rtol: 1e-5, what: 'first training loss' });
    });
  }

  for (const dt of DTYPES) {
    it(`${dt}: forecast.js forecasts ${H} points (heads 5 + 3 + 1, autoregressive) as PyTorch's generate`, async () => {
      const d = workdir();
      const r = await node(
        'forecast.js',
        ['--checkpoint', `tiny-${dt}`, '--data', 'series.csv', '--context', String(T), '--horizon', String(H), '--out', 'out'],
        d,
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('heads run: 5 + 3 + 1, autoregressive');
      const e = expected.dtypes[dt];
      expectWithin(forecastColumn(join(d, 'out/forecasts.csv')), e.forecast, 1e-5 * e.forecast_scale, `${dt} forecast`);
    });
  }

  it('bad folders and mismatched configs are refused with the fix, exit 2', async () => {
    const d = workdir();
    let r = await node('train.js', ['--config', 'finetune.json', '--set', 'model.hidden=32', '--set', 'model.heads=4'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/model\.init\.from .*tiny-f32: its config does not describe the model being trained \(2 differences\)/);
    expect(r.stderr).toMatch(/model\.hidden is 32 but config\.json has hidden_size = 16: set model\.hidden to 16/);
    expect(r.stderr).toMatch(/model\.heads is 4 but config\.json has num_attention_heads = 2/);
    expect(existsSync(join(d, 'runs/finetune/metrics.jsonl'))).toBe(false);

    const cfg = JSON.parse(readFileSync(join(d, 'tiny-f32/config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(d, 'tiny-f32/config.json'), JSON.stringify({ ...cfg, model_type: 'llama', use_dense: true }));
    r = await node('forecast.js', ['--checkpoint', 'tiny-f32', '--data', 'series.csv', '--context', '12', '--out', 'out'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is not a Time-MoE config\.json:\n\s+model_type: .*"time_moe"/);
    writeFileSync(join(d, 'tiny-f32/config.json'), JSON.stringify({ ...cfg, use_dense: true, num_key_value_heads: 1 }));
    r = await node('train.js', ['--config', 'finetune.json'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/use_dense true: this engine implements the sparse MoE FFN only/);
    expect(r.stderr).toMatch(/num_key_value_heads 1 differs from num_attention_heads 2: grouped KV heads are not implemented/);

    r = await node('forecast.js', ['--checkpoint', 'tiny-bf16', '--data', 'series.csv', '--out', 'out'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--context is required for a Hugging Face folder/);
    r = await node('forecast.js', ['--checkpoint', 'nowhere', '--data', 'series.csv', '--context', '12'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nowhere: does not exist\. Pass a checkpoint directory/);
    writeFileSync(join(d, 'tiny-f16/model.safetensors'), 'not a safetensors file');
    r = await node('forecast.js', ['--checkpoint', 'tiny-f16', '--data', 'series.csv', '--context', '12', '--out', 'out'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/model\.safetensors: header length .* The file is damaged/);
    expect(existsSync(join(d, 'out'))).toBe(false);
  });
});

describe('(b) our export in PyTorch', () => {
  it('export.js writes the bytes PyTorch loaded with strict names; our checkpoint and the export forecast what PyTorch forecast from them', async () => {
    const d = workdir();
    const r = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'hf-out'], d);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/58 tensors, 7,168 parameters, F32/);
    expect(readdirSync(join(d, 'hf-out')).sort()).toEqual(['SHA256SUMS', 'config.json', 'model.safetensors']);
    expect(sha256(join(d, 'hf-out/model.safetensors'))).toBe(exportCheck.model_safetensors_sha256);
    // config.json is what PyTorch loaded plus auto_map (appended last): without it, the same bytes.
    const cfgText = readFileSync(join(d, 'hf-out/config.json'), 'utf8');
    const cfg = JSON.parse(cfgText) as Record<string, unknown>;
    expect(cfg.auto_map).toEqual({
      AutoConfig: 'Maple728/TimeMoE-50M--configuration_time_moe.TimeMoeConfig',
      AutoModelForCausalLM: 'Maple728/TimeMoE-50M--modeling_time_moe.TimeMoeForPrediction',
    });
    expect(Object.keys(cfg).at(-1)).toBe('auto_map');
    delete cfg.auto_map;
    expect(
      createHash('sha256')
        .update(`${JSON.stringify(cfg, null, 2)}\n`)
        .digest('hex'),
    ).toBe(exportCheck.config_json_sha256);
    // SHA256SUMS in sha256sum's format, naming both files.
    expect(readFileSync(join(d, 'hf-out/SHA256SUMS'), 'utf8')).toBe(
      `${exportCheck.model_safetensors_sha256}  model.safetensors\n${sha256(join(d, 'hf-out/config.json'))}  config.json\n`,
    );
    expect(cfgText.endsWith('\n')).toBe(true);

    for (const ckpt of ['finetuned', 'hf-out']) {
      const out = `fc-${ckpt}`;
      const f = await node('forecast.js', ['--checkpoint', ckpt, '--data', 'series.csv', '--context', String(T), '--horizon', String(H), '--out', out], d);
      expect(f.status, f.stderr).toBe(0);
      expectWithin(forecastColumn(join(d, out, 'forecasts.csv')), exportCheck.forecast, 1e-5 * exportCheck.forecast_scale, `forecast from ${ckpt}`);
    }
    // The fine-tuned weights differ from the folder they started from: this is not (a) again.
    expect(Math.abs(exportCheck.forecast[0]! - expected.dtypes.f32.forecast[0]!)).toBeGreaterThan(1e-3);
  });

  it('refuses what Time-MoE cannot hold and never overwrites by accident (exit 2, nothing written)', async () => {
    const d = workdir();
    let r = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'tiny-f32'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /tiny-f32: already exists and is not empty \(config\.json, model\.safetensors\)\. Choose another --out, or pass --force to move its files aside into tiny-f32\.set-aside-<time>\/ \(nothing is deleted\)/,
    );
    expect(sha256(join(d, 'tiny-f32/model.safetensors'))).toBe(sha256(join(FIX, 'tiny-f32/model.safetensors')));

    const state = JSON.parse(readFileSync(join(d, 'finetuned/state.json'), 'utf8')) as { config: { model: Record<string, unknown> } };
    state.config.model.sharedIntermediate = 0;
    state.config.model.normTopkProb = true;
    writeFileSync(join(d, 'finetuned/state.json'), JSON.stringify(state));
    r = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'x'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/this model has no Hugging Face Time-MoE equivalent:\n\s+model\.sharedIntermediate 0: every Time-MoE layer has a shared expert/);
    expect(r.stderr).toMatch(/model\.normTopkProb true: Time-MoE does not renormalise/);
    expect(existsSync(join(d, 'x'))).toBe(false);
    r = await node('export.js', ['--checkpoint', 'finetuned'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/required option '--out <folder>' not specified/);
  });
});
