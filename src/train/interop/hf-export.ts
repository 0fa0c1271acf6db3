/**
 * Export to a Hugging Face Time-MoE folder: config.json with TimeMoeConfig's keys and
 * model.safetensors (F32, the Hugging Face state-dict names, `__metadata__.format = "pt"` as
 * transformers expects). Runs on the host only: a checkpoint's weights already carry the HF names,
 * so they are read, checked against the model the config describes, and written again; a
 * checkpoint trained with optim.lora has its adapters merged into the weights first.
 *
 * Atomic (src/util/atomic-write.ts): `<out>` is either absent, the previous export (with
 * --force), or complete.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { replaceFolderAtomic, writeSyncedText } from '../../util/atomic-write.ts';
import { CheckpointError, MODEL_FILE } from '../persist/checkpoint.ts';
import { writeSafetensors, type HostTensor, type WriteResult } from '../persist/safetensors.ts';
import { hfFromModel } from './hf-config.ts';
import { HF_CONFIG_FILE, expectedEntries, readSourceTensors, type ModelSource } from './model-source.ts';

export interface ExportResult {
  out: string;
  tensors: number;
  parameters: number;
  /** Bytes and SHA-256 of the written model.safetensors. */
  bytes: number;
  sha256: string;
  config: Record<string, unknown>;
}

/** Check the file's tensors are exactly the model's entries (names and shapes). */
function checkTensors(file: string, tensors: ReadonlyMap<string, HostTensor>, expected: readonly { name: string; shape: number[] }[]): void {
  const problems: string[] = [];
  const want = new Map(expected.map((e) => [e.name, e.shape]));
  for (const [name, shape] of want) {
    const t = tensors.get(name);
    if (!t) problems.push(`missing tensor ${name} [${shape.join(', ')}]`);
    else if (t.shape.join(',') !== shape.join(',')) problems.push(`${name}: shape [${t.shape.join(', ')}] in the file, the config needs [${shape.join(', ')}]`);
  }
  for (const name of tensors.keys()) if (!want.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length)
    throw new CheckpointError(file, `does not match the model its config describes (${problems.length} problems: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? '; …' : ''})`, 'Export a checkpoint written by train.js, unmodified');
}

export async function exportHf(source: ModelSource, outPath: string, opts: { force?: boolean; cwd?: string } = {}): Promise<ExportResult> {
  const out = resolve(opts.cwd ?? process.cwd(), outPath);
  const auxFactor = source.kind === 'checkpoint' ? source.train.loss.auxFactor : source.hf.router_aux_loss_factor;
  const contextLength = source.kind === 'checkpoint' ? source.train.data.contextLength : undefined;
  // Everything that can be refused is checked before the first byte is written.
  const config = hfFromModel(source.model, { auxFactor, contextLength }, source.dir);
  if (existsSync(out) && readdirSync(out).length > 0 && !opts.force)
    throw new CheckpointError(out, 'already exists and is not empty', 'Choose another --out, or pass --force to replace it');
  if (resolve(out) === resolve(source.dir)) throw new CheckpointError(out, 'is the folder being exported', 'Choose another --out');
  const { file, tensors } = await readSourceTensors(source);
  if (source.kind === 'checkpoint' && file.sha256 !== source.state.files.model.sha256)
    throw new CheckpointError(source.modelFile, 'contents do not match the SHA-256 recorded in state.json (damaged after it was written)', 'Restore the file from a copy, or export an older checkpoint');
  const expected = expectedEntries(source.model);
  checkTensors(source.modelFile, tensors, expected);

  let written: WriteResult | null = null;
  await replaceFolderAtomic(out, async (tmp) => {
    written = await writeSafetensors(join(tmp, MODEL_FILE), tensors, { format: 'pt', producer: 'webgpu-moe' }, { atomic: false, fsync: true });
    await writeSyncedText(join(tmp, HF_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  });
  const w = written as WriteResult | null;
  if (!w) throw new Error('export: the folder was written without its model file');
  const parameters = expected.reduce((a, e) => a + e.shape.reduce((x, y) => x * y, 1), 0);
  return { out, tensors: expected.length, parameters, bytes: w.bytes, sha256: w.sha256, config };
}
