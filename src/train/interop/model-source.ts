/**
 * Where trained weights come from, for forecasting, export and fine-tuning: one of our checkpoints
 * (a `step-N` directory, a checkpoints root holding `latest`, or a run directory holding
 * `checkpoints/`), or a Hugging Face Time-MoE folder (config.json + model.safetensors in F32, BF16
 * or F16). Resolving reads only small files (state.json, config.json, the safetensors header), so
 * a wrong path or config fails before anything is allocated.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelConfig } from '../../model/config.ts';
import { MetaRuntime } from '../../kernels/meta-runtime.ts';
import { TimeMoeModel } from '../../model/time-moe.ts';
import type { Parameter } from '../../model/parameter.ts';
import { CheckpointError, MODEL_FILE, STATE_FILE, latestCheckpoint, loadModelWeightsFiltered, readCheckpointState, tensorStore, type CheckpointState, type WeightStores } from '../persist/checkpoint.ts';
import { readSafetensors, type HostTensor, type SafetensorsFile } from '../persist/safetensors.ts';
import { mergeLora } from '../../model/lora.ts';
import { parseConfig, type TrainConfig } from '../config.ts';
import { namedTarget } from '../plan/targets.ts';
import { modelFromHf, parseHfConfig, type HfTimeMoeConfig } from './hf-config.ts';

export const HF_CONFIG_FILE = 'config.json';

export type ModelSource =
  | { kind: 'checkpoint'; dir: string; modelFile: string; state: CheckpointState; train: TrainConfig; model: ModelConfig }
  | { kind: 'hf'; dir: string; modelFile: string; hf: HfTimeMoeConfig; model: ModelConfig };

const WHAT = 'Pass a checkpoint directory (runs/<name>/checkpoints/step-N), a run directory (runs/<name>) or a Hugging Face Time-MoE folder (config.json + model.safetensors)';

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Resolve `path` (relative to `cwd`) to a model source, validating its config. */
export async function resolveModelSource(path: string, cwd: string = process.cwd()): Promise<ModelSource> {
  const full = resolve(cwd, path);
  if (!existsSync(full)) throw new CheckpointError(full, 'does not exist', WHAT);
  if (!isDir(full)) throw new CheckpointError(full, 'is a file, not a folder', WHAT);
  if (existsSync(join(full, STATE_FILE))) return fromCheckpoint(full);
  if (existsSync(join(full, HF_CONFIG_FILE))) return fromHfFolder(full);
  const root = isDir(join(full, 'checkpoints')) ? join(full, 'checkpoints') : full;
  const latest = await latestCheckpoint(root);
  if (latest) return fromCheckpoint(latest);
  throw new CheckpointError(full, 'holds no checkpoint (no state.json, checkpoints/ or latest pointer) and no Hugging Face config.json', WHAT);
}

async function fromCheckpoint(dir: string): Promise<ModelSource> {
  const state = await readCheckpointState(dir);
  // The checkpoint stores the full training config it was trained with: validate it as a config.
  const train = parseConfig(state.config, join(dir, STATE_FILE));
  return { kind: 'checkpoint', dir, modelFile: join(dir, MODEL_FILE), state, train, model: train.model };
}

function fromHfFolder(dir: string): ModelSource {
  const cfgFile = join(dir, HF_CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    throw new CheckpointError(cfgFile, `is not valid JSON (${(e as Error).message})`, 'Restore the config.json that came with the weights');
  }
  const hf = parseHfConfig(raw, cfgFile);
  const model = modelFromHf(hf, cfgFile);
  const modelFile = join(dir, MODEL_FILE);
  if (!existsSync(modelFile)) {
    if (existsSync(join(dir, 'model.safetensors.index.json')))
      throw new CheckpointError(dir, 'holds sharded weights (model.safetensors.index.json)', 'Merge the shards into one model.safetensors (e.g. in PyTorch: save_pretrained(..., max_shard_size="100GB"))');
    if (existsSync(join(dir, 'pytorch_model.bin')))
      throw new CheckpointError(dir, 'holds pytorch_model.bin but no model.safetensors', 'Convert it in PyTorch: model.save_pretrained(folder, safe_serialization=True)');
    throw new CheckpointError(modelFile, 'missing', 'A Hugging Face Time-MoE folder holds config.json and model.safetensors');
  }
  return { kind: 'hf', dir, modelFile, hf, model };
}

/** The LoRA config a checkpoint was trained with (null: none, or not a checkpoint). */
export function sourceLora(source: ModelSource): TrainConfig['optim']['lora'] | null {
  return source.kind === 'checkpoint' ? (source.train.optim.lora ?? null) : null;
}

/**
 * The source's model.safetensors, and its tensors under plain Time-MoE names: a checkpoint trained
 * with optim.lora has its adapters merged into the weights (W + alpha/rank · B A, src/model/lora.ts).
 */
export async function readSourceTensors(source: ModelSource): Promise<{ file: SafetensorsFile; tensors: ReadonlyMap<string, HostTensor> }> {
  const file = await readSafetensors(source.modelFile);
  const lora = sourceLora(source);
  if (!lora) return { file, tensors: file.tensors };
  const layout = new TimeMoeModel(new MetaRuntime(namedTarget('lavapipe').caps), source.model, 0, {}, lora);
  try {
    return { file, tensors: mergeLora(file.tensors, layout.adapters, source.modelFile) };
  } catch (e) {
    throw new CheckpointError(source.modelFile, `cannot merge the LoRA adapters its config names (${(e as Error).message})`, 'Use the checkpoint unmodified, with the state.json it was saved with');
  }
}

const HEAD_RE = /^(lm_heads\.|classifier\.)/;

/**
 * Load the source's weights into a model built with `source.model` (names and shapes checked
 * first). Adapters of the model being trained (group lora) keep their init; with `backboneOnly`
 * so do its heads, and the source's heads are not read (a classifier on a forecaster's backbone).
 */
export async function loadSourceWeights(source: ModelSource, params: readonly Parameter[], weights?: WeightStores, opts: { backboneOnly?: boolean } = {}): Promise<void> {
  const skipHead = !!opts.backboneOnly;
  const targets = params.filter((p) => p.group !== 'lora' && !(skipHead && p.group === 'head'));
  const keep = (name: string) => !(skipHead && HEAD_RE.test(name));
  const store = weights ?? ((p: Parameter) => tensorStore(p.data));
  const merged = sourceLora(source) ? (await readSourceTensors(source)).tensors : undefined;
  await loadModelWeightsFiltered(source.modelFile, targets, store, keep, merged);
}

/**
 * The state-dict entries (Hugging Face names, shapes) of a model config, from the model itself
 * built on the meta runtime: no device, no memory, and no second list of names to keep in step.
 */
export function expectedEntries(model: ModelConfig): { name: string; shape: number[] }[] {
  const meta = new MetaRuntime(namedTarget('lavapipe').caps);
  const m = new TimeMoeModel(meta, model, 0);
  return m.params.flatMap((p) => p.stateEntries().map(({ name, shape }) => ({ name, shape })));
}

/** One line naming a source, for summaries. */
export function describeSource(s: ModelSource): string {
  return s.kind === 'checkpoint' ? `checkpoint ${s.dir} (step ${s.state.step})` : `Hugging Face Time-MoE folder ${s.dir}`;
}
