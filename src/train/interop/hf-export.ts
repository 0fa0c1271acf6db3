/**
 * Export to a Hugging Face Time-MoE folder: config.json with TimeMoeConfig's keys (and `auto_map`,
 * so `AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` finds the published
 * Time-MoE code), model.safetensors (the Hugging Face state-dict names, `__metadata__.format = "pt"`
 * as transformers expects; F32, or BF16 / F16 with `dtype`) and SHA256SUMS (`sha256sum -c` format)
 * so every reader can verify the folder (src/train/interop/model-source.ts). Runs on the host only:
 * a checkpoint's weights already carry the HF names, so they are read (verified), checked against
 * the model the config describes, and written again; a checkpoint trained with optim.lora has its
 * adapters merged into the weights first.
 *
 * Paths (docs/RELIABILITY.md, "Output paths"): `<out>` is never the source's run folder, inside it,
 * or a folder holding it; a non-empty `<out>` is refused unless --force, which moves the previous
 * folder whole to `<out>.set-aside-<time>` (nothing is deleted). Atomic (src/util/atomic-write.ts):
 * `<out>` is either absent, the previous folder, or the complete export.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { replaceFolderAtomic, writeSyncedText } from '../../util/atomic-write.ts';
import { checkApart, checkWritable, listFiles, setAsidePath, shown } from '../../util/output-path.ts';
import { CheckpointError, MODEL_FILE } from '../persist/checkpoint.ts';
import { writeSafetensors, type HostTensor, type WriteResult } from '../persist/safetensors.ts';
import type { WriteDType } from '../persist/safetensors-bytes.ts';
import { hfFromModel } from './hf-config.ts';
import { HF_CONFIG_FILE, SUMS_FILE, expectedEntries, readSourceTensors, sourceRoot, type ModelSource } from './model-source.ts';

/** export.js --dtype: the safetensors dtype and config.json's torch_dtype. */
export const EXPORT_DTYPES = {
  f32: { st: 'F32', torch: 'float32', bytes: 4 },
  bf16: { st: 'BF16', torch: 'bfloat16', bytes: 2 },
  f16: { st: 'F16', torch: 'float16', bytes: 2 },
} as const satisfies Record<string, { st: WriteDType; torch: string; bytes: number }>;
export type ExportDType = keyof typeof EXPORT_DTYPES;

/**
 * `auto_map` of the published Time-MoE checkpoints (Maple728/TimeMoE-50M's config.json names
 * configuration_time_moe.TimeMoeConfig and modeling_time_moe.TimeMoeForPrediction), as remote-code
 * references "<repo>--<module>.<class>": transformers downloads the code from that repo.
 */
export const TIME_MOE_AUTO_MAP = {
  AutoConfig: 'Maple728/TimeMoE-50M--configuration_time_moe.TimeMoeConfig',
  AutoModelForCausalLM: 'Maple728/TimeMoE-50M--modeling_time_moe.TimeMoeForPrediction',
} as const;

export interface ExportResult {
  out: string;
  tensors: number;
  parameters: number;
  dtype: ExportDType;
  /** Bytes and SHA-256 of the written model.safetensors. */
  bytes: number;
  sha256: string;
  config: Record<string, unknown>;
  /** With --force over a non-empty folder: where its previous files went, and which they were. */
  setAside: { path: string; files: string[] } | null;
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
    throw new CheckpointError(
      file,
      `does not match the model its config describes (${problems.length} problems: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? '; …' : ''})`,
      'Export a checkpoint written by train.js, unmodified',
    );
}

/** The largest finite f16 value; bigger ones would be written as infinity. */
const F16_MAX = 65504;

export async function exportHf(source: ModelSource, outPath: string, opts: { force?: boolean; cwd?: string; dtype?: ExportDType } = {}): Promise<ExportResult> {
  const cwd = opts.cwd ?? process.cwd();
  const out = resolve(cwd, outPath);
  const dtype = opts.dtype ?? 'f32';
  const dt = EXPORT_DTYPES[dtype];
  const auxFactor = source.kind === 'checkpoint' ? source.train.loss.auxFactor : source.hf.router_aux_loss_factor;
  const contextLength = source.kind === 'checkpoint' ? source.train.data.contextLength : undefined;
  // Everything that can be refused is checked before the first byte is written.
  const config = { ...hfFromModel(source.model, { auxFactor, contextLength }, source.dir), torch_dtype: dt.torch, auto_map: { ...TIME_MOE_AUTO_MAP } };
  const root = sourceRoot(source);
  checkApart(out, [{ ...root, via: `--checkpoint ${shown(source.dir, cwd)} belongs to it` }], '--out', { cwd, suffix: 'hf' });
  checkWritable(out);
  const old = existsSync(out) && readdirSync(out).length > 0 ? listFiles(out) : null;
  if (old && !opts.force)
    throw new CheckpointError(
      out,
      `already exists and is not empty (${old.slice(0, 5).join(', ')}${old.length > 5 ? ', …' : ''})`,
      `Choose another --out, or pass --force to move its files aside into ${shown(out, cwd)}.set-aside-<time>/ (nothing is deleted)`,
    );
  const { tensors } = await readSourceTensors(source);
  const expected = expectedEntries(source.model);
  checkTensors(source.modelFile, tensors, expected);
  if (dtype === 'f16') {
    for (const [name, t] of tensors) {
      const i = t.data.findIndex((v) => Math.abs(v) > F16_MAX);
      if (i >= 0)
        throw new CheckpointError(
          source.modelFile,
          `tensor ${name} holds ${t.data[i]} (index ${i}), beyond f16's range (±${F16_MAX}): it would be written as infinity`,
          'Export with --dtype bf16 (same range as f32) or --dtype f32',
        );
    }
  }

  const parameters = expected.reduce((a, e) => a + e.shape.reduce((x, y) => x * y, 1), 0);
  const setAside = old ? setAsidePath(out) : null;
  const configText = `${JSON.stringify(config, null, 2)}\n`;
  let written: WriteResult | null = null;
  await replaceFolderAtomic(
    out,
    async (tmp) => {
      written = await writeSafetensors(join(tmp, MODEL_FILE), tensors, { format: 'pt', producer: 'webgpu-moe' }, { atomic: false, fsync: true, dtype: dt.st });
      await writeSyncedText(join(tmp, HF_CONFIG_FILE), configText);
      await writeSyncedText(join(tmp, SUMS_FILE), `${(written as WriteResult).sha256}  ${MODEL_FILE}\n${sha256Text(configText)}  ${HF_CONFIG_FILE}\n`);
    },
    { action: 'write', need: { bytes: parameters * dt.bytes + configText.length + 65536, what: 'the export' }, setAsideAs: setAside ?? undefined },
  );
  const w = written as WriteResult | null;
  if (!w) throw new Error('export: the folder was written without its model file');
  return {
    out,
    tensors: expected.length,
    parameters,
    dtype,
    bytes: w.bytes,
    sha256: w.sha256,
    config,
    setAside: setAside && old ? { path: setAside, files: old } : null,
  };
}

function sha256Text(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
