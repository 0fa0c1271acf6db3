/**
 * Every reader of a checkpoint or exported folder verifies it (docs/RELIABILITY.md, "Checksums and
 * finite weights"): forecast.js, export.js and train.js's model.init.from read weights through one
 * function (src/train/interop/model-source.ts readSourceTensors), which checks the SHA-256 recorded
 * in state.json (checkpoints) or SHA256SUMS (folders export.js wrote) and that every weight is
 * finite. A forecast that comes out non-finite anyway is refused (exit 3), nothing written.
 */
import { describe, it, expect } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FC_ARGS, editWeights, expectNoStack, fixtureRun, flipByte, snapshot } from './io-helpers.ts';
import { node } from '../support/spawn.ts';

/** The three readers, as a user runs them, on the source `src` (outputs to fresh folders). */
async function readers(d: string, src: string) {
  return {
    forecast: await node('forecast.js', ['--checkpoint', src, ...FC_ARGS, '--out', 'fc-out'], d),
    export: await node('export.js', ['--checkpoint', src, '--out', 'hf-out'], d),
    'init.from': await node('train.js', ['--config', 'finetune.json', '--set', `model.init.from=${src}`, '--set', 'logging.dir=runs/ft'], d),
  };
}

async function expectRefusedByAll(d: string, src: string, msg: RegExp): Promise<void> {
  const before = snapshot(d);
  for (const [name, r] of Object.entries(await readers(d, src))) {
    expect(r.status, `${name}: ${r.stdout}${r.stderr}`).toBe(2);
    expect(r.stderr, name).toMatch(msg);
    expectNoStack(r);
    // Nothing written: no output folder, no run folder.
    expect(existsSync(join(d, 'fc-out')) || existsSync(join(d, 'hf-out')) || existsSync(join(d, 'runs/ft')), name).toBe(false);
  }
  expect(snapshot(d)).toEqual(before);
}

describe('a checkpoint whose model.safetensors fails its SHA-256', () => {
  it('is refused by forecast.js, export.js and model.init.from alike, as --resume refuses it: exit 2, an earlier checkpoint named', async () => {
    const d = fixtureRun();
    flipByte(join(d, 'runs/t/checkpoints/step-2/model.safetensors'));
    await expectRefusedByAll(
      d,
      'runs/t',
      /runs\/t\/checkpoints\/step-2\/model\.safetensors: contents do not match the SHA-256 recorded in state\.json \(changed or damaged after it was written\)\. Restore the file from a copy, or use an earlier checkpoint \(step-1 in runs\/t\/checkpoints; e\.g\. runs\/t\/checkpoints\/step-1\)/,
    );
    // The earlier one it names works.
    const ok = await node('forecast.js', ['--checkpoint', 'runs/t/checkpoints/step-1', ...FC_ARGS, '--out', 'fc-ok'], d);
    expect(ok.status, ok.stderr).toBe(0);
  });

  it('a truncated file is refused before it is read (size against state.json)', async () => {
    const d = fixtureRun();
    const f = join(d, 'runs/t/checkpoints/step-2/model.safetensors');
    writeFileSync(f, readFileSync(f).subarray(0, 1000));
    const r = await node('forecast.js', ['--checkpoint', 'runs/t', ...FC_ARGS], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/model\.safetensors: is 1,000 bytes, but state\.json records 34,912 \(changed or damaged after it was written\)/);
    expectNoStack(r);
  });
});

describe('a folder export.js wrote carries SHA256SUMS, and readers check it', () => {
  it('a flipped byte in model.safetensors or an edited config.json is refused; without SHA256SUMS (as PyTorch writes folders) it loads', async () => {
    const d = fixtureRun();
    const e = await node('export.js', ['--checkpoint', 'runs/t', '--out', 'hf'], d);
    expect(e.status, e.stderr).toBe(0);
    const model = join(d, 'hf/model.safetensors');
    const good = readFileSync(model);
    flipByte(model);
    await expectRefusedByAll(
      d,
      'hf',
      /hf\/model\.safetensors: contents do not match the SHA-256 recorded in SHA256SUMS \(changed or damaged after it was written\)\. Export the checkpoint again \(node export\.js\), or restore the folder from a copy\. If you changed the files on purpose \(e\.g\. PyTorch save_pretrained into this folder\), delete SHA256SUMS/,
    );
    writeFileSync(model, good);

    const cfgPath = join(d, 'hf/config.json');
    const cfg = readFileSync(cfgPath, 'utf8');
    writeFileSync(cfgPath, cfg.replace('"rope_theta": 10000', '"rope_theta": 20000'));
    await expectRefusedByAll(
      d,
      'hf',
      /hf\/config\.json: contents do not match the SHA-256 recorded in SHA256SUMS \(changed or damaged after export\.js wrote it\)/,
    );
    writeFileSync(cfgPath, cfg);

    const ok = await node('forecast.js', ['--checkpoint', 'hf', ...FC_ARGS, '--out', 'fc-ok'], d);
    expect(ok.status, ok.stderr).toBe(0);
    flipByte(model);
    rmSync(join(d, 'hf/SHA256SUMS'));
    // Nothing to check against (a PyTorch folder has no SHA256SUMS): the damaged weights load.
    const unchecked = await node('forecast.js', ['--checkpoint', 'hf', ...FC_ARGS, '--out', 'fc-unchecked'], d);
    expect(unchecked.status, unchecked.stderr).toBe(0);
  });
});

describe('non-finite weights', () => {
  it('a checkpoint holding NaN (checksum valid: saved that way) is refused by every reader, naming the tensor and an earlier checkpoint', async () => {
    const d = fixtureRun();
    editWeights(join(d, 'runs/t/checkpoints/step-2'), (w) => {
      w[3] = NaN;
      w[7] = Infinity;
    });
    await expectRefusedByAll(
      d,
      'runs/t',
      /runs\/t\/checkpoints\/step-2\/model\.safetensors: tensor \S+ holds 2 non-finite values of \d+ \(the first, at index 3, is NaN\)\. The run that saved it had broken down \(diverged\) by then, so these weights cannot forecast or be trained on: use an earlier checkpoint \(step-1 in runs\/t\/checkpoints; e\.g\. runs\/t\/checkpoints\/step-1\)/,
    );
  });

  it('a model folder holding NaN (no SHA256SUMS, as PyTorch writes them) is refused: "export them again from a good checkpoint"; export.js refuses to write one', async () => {
    const d = fixtureRun();
    editWeights(join(d, 'finetuned'), (w) => void w.fill(NaN));
    const e = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'hf'], d);
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(
      /finetuned\/model\.safetensors: tensor \S+ holds \d+ non-finite values .*there is no earlier complete checkpoint beside it, so train again/,
    );
    expect(existsSync(join(d, 'hf'))).toBe(false);
    // The NaN weights in a folder written by another tool (config.json from tiny-f32: the same model).
    mkdirSync(join(d, 'pt'));
    copyFileSync(join(d, 'tiny-f32/config.json'), join(d, 'pt/config.json'));
    copyFileSync(join(d, 'finetuned/model.safetensors'), join(d, 'pt/model.safetensors'));
    for (const [name, r] of Object.entries(await readers(d, 'pt'))) {
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(
        /pt\/model\.safetensors: tensor \S+ holds \d+ non-finite values of \d+ \(the first, at index 0, is NaN\)\. These weights are broken: export them again from a good checkpoint/,
      );
      expectNoStack(r);
    }
  });

  it('finite weights whose forecast overflows: exit 3, the first bad value named, nothing written', async () => {
    const d = fixtureRun();
    editWeights(join(d, 'runs/t/checkpoints/step-2'), (w) => void w.fill(3e38));
    const r = await node('forecast.js', ['--checkpoint', 'runs/t', ...FC_ARGS, '--out', 'fc'], d);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /error: the model's forecast is not finite: \d+ of 4 forecast values \(the first: series series\.csv:value, origin 26, step \d = -?(NaN|Infinity)\), although every weight of checkpoint \S+step-2 \(step 2\) is finite: the model overflows on this input\. Nothing was written\./,
    );
    expectNoStack(r);
    expect(existsSync(join(d, 'fc'))).toBe(false);
  });
});
