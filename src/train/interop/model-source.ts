/**
 * Where trained weights come from, for forecasting, export and fine-tuning: one of our checkpoints
 * (a `step-N` directory, a checkpoints root holding `latest`, or a run directory holding
 * `checkpoints/`), or a Hugging Face Time-MoE folder (config.json + model.safetensors in F32, BF16
 * or F16). Resolving reads only small files (state.json, config.json, the safetensors header), so
 * a wrong path or config fails before anything is allocated.
 *
 * This is the one place the weights of a model source are read (readSourceTensors; export.js,
 * forecast.js and model.init.from all come through it), so it is where they are verified: the
 * SHA-256 that state.json records for a checkpoint, or that SHA256SUMS records for a folder
 * export.js wrote (a folder without one, e.g. from PyTorch, has nothing to check against), and
 * every value finite. A file that fails is a CheckpointError (exit 2) naming the file, the tensor
 * and an earlier checkpoint to use instead.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ModelConfig } from '../../model/config.ts';
import { MetaRuntime } from '../../kernels/meta-runtime.ts';
import { TimeMoeModel } from '../../model/time-moe.ts';
import type { Parameter } from '../../model/parameter.ts';
import {
  CheckpointError,
  LATEST_FILE,
  MODEL_FILE,
  STATE_FILE,
  STEP_RE,
  latestCheckpoint,
  loadModelWeightsFiltered,
  readCheckpointState,
  type CheckpointState,
} from '../persist/checkpoint.ts';
import { tensorStore, type WeightStores } from '../persist/stores.ts';
import { readSafetensors, type HostTensor, type SafetensorsFile } from '../persist/safetensors.ts';
import { mergeLora } from '../../model/lora.ts';
import { parseConfig, type TrainConfig } from '../config.ts';
import { shown } from '../../util/output-path.ts';
import { namedTarget } from '../plan/targets.ts';
import { modelFromHf, parseHfConfig, type HfTimeMoeConfig } from './hf-config.ts';

export const HF_CONFIG_FILE = 'config.json';
/** The checksums export.js writes beside config.json and model.safetensors (`sha256sum -c SHA256SUMS` checks them). */
export const SUMS_FILE = 'SHA256SUMS';

export type ModelSource =
  | { kind: 'checkpoint'; dir: string; modelFile: string; state: CheckpointState; train: TrainConfig; model: ModelConfig }
  | { kind: 'hf'; dir: string; modelFile: string; hf: HfTimeMoeConfig; model: ModelConfig; sums: ReadonlyMap<string, string> | null };

const WHAT =
  'Pass a checkpoint directory (runs/<name>/checkpoints/step-N), a run directory (runs/<name>) or a Hugging Face Time-MoE folder (config.json + model.safetensors)';

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

/** SHA256SUMS as name -> sha256 (null: the folder has none). Lines are `<sha256>  <name>` (or ` *<name>`), as sha256sum writes them. */
export function readSums(dir: string): Map<string, string> | null {
  const file = join(dir, SUMS_FILE);
  if (!existsSync(file)) return null;
  const sums = new Map<string, string>();
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^([0-9a-f]{64}) [ *]([^/\\]+)$/.exec(line);
    if (!m)
      throw new CheckpointError(
        file,
        `line ${i + 1} is not "<sha256>  <file name>" (${JSON.stringify(line.slice(0, 80))})`,
        `export.js writes this file: export the folder again, or delete ${SUMS_FILE} to load the folder unchecked`,
      );
    sums.set(m[2]!, m[1]!);
  });
  return sums;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The fix for a folder whose files do not match SHA256SUMS. */
const SUMS_FIX = `Export the checkpoint again (node export.js), or restore the folder from a copy. If you changed the files on purpose (e.g. PyTorch save_pretrained into this folder), delete ${SUMS_FILE}`;

function fromHfFolder(dir: string): ModelSource {
  const cfgFile = join(dir, HF_CONFIG_FILE);
  const sums = readSums(dir);
  let raw: unknown;
  try {
    const bytes = readFileSync(cfgFile);
    const want = sums?.get(HF_CONFIG_FILE);
    if (want !== undefined && sha256Of(bytes) !== want)
      throw new CheckpointError(cfgFile, `contents do not match the SHA-256 recorded in ${SUMS_FILE} (changed or damaged after export.js wrote it)`, SUMS_FIX);
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(cfgFile, `is not valid JSON (${(e as Error).message})`, 'Restore the config.json that came with the weights');
  }
  const hf = parseHfConfig(raw, cfgFile);
  const model = modelFromHf(hf, cfgFile);
  const modelFile = join(dir, MODEL_FILE);
  if (!existsSync(modelFile)) {
    if (existsSync(join(dir, 'model.safetensors.index.json')))
      throw new CheckpointError(
        dir,
        'holds sharded weights (model.safetensors.index.json)',
        'Merge the shards into one model.safetensors (e.g. in PyTorch: save_pretrained(..., max_shard_size="100GB"))',
      );
    if (existsSync(join(dir, 'pytorch_model.bin')))
      throw new CheckpointError(
        dir,
        'holds pytorch_model.bin but no model.safetensors',
        'Convert it in PyTorch: model.save_pretrained(folder, safe_serialization=True)',
      );
    throw new CheckpointError(modelFile, 'missing', 'A Hugging Face Time-MoE folder holds config.json and model.safetensors');
  }
  if (sums && !sums.has(MODEL_FILE)) throw new CheckpointError(join(dir, SUMS_FILE), `names no ${MODEL_FILE}`, SUMS_FIX);
  return { kind: 'hf', dir, modelFile, hf, model, sums };
}

/** The LoRA config a checkpoint was trained with (null: none, or not a checkpoint). */
export function sourceLora(source: ModelSource): TrainConfig['optim']['lora'] | null {
  return source.kind === 'checkpoint' ? (source.train.optim.lora ?? null) : null;
}

/**
 * The folder a source's files belong to, which no output may be, be inside, or hold: the run
 * folder of a checkpoint (`<run>/checkpoints/step-N` -> `<run>`), a checkpoints root holding
 * `latest`, else the checkpoint or model folder itself.
 */
export function sourceRoot(source: ModelSource): { path: string; what: string } {
  if (source.kind === 'hf') return { path: source.dir, what: 'the model folder being read' };
  const parent = dirname(source.dir);
  if (basename(parent) === 'checkpoints') return { path: dirname(parent), what: 'the run being read' };
  if (existsSync(join(parent, LATEST_FILE))) return { path: parent, what: 'the checkpoints folder being read' };
  return { path: source.dir, what: 'the checkpoint being read' };
}

/** The complete checkpoints older than this one in its folder ("step-3, step-6"), for "use an earlier one". */
function earlierCheckpoints(source: Extract<ModelSource, { kind: 'checkpoint' }>): string[] {
  const root = dirname(source.dir);
  try {
    return readdirSync(root)
      .flatMap((n) => {
        const m = STEP_RE.exec(n);
        return m && Number(m[1]) < source.state.step && existsSync(join(root, n, STATE_FILE)) ? [{ n, step: Number(m[1]) }] : [];
      })
      .sort((a, b) => a.step - b.step)
      .map((x) => x.n);
  } catch {
    return [];
  }
}

/** "use an earlier checkpoint (step-3 in runs/t/checkpoints; e.g. ...)", or null when there is none. */
function earlierHint(source: Extract<ModelSource, { kind: 'checkpoint' }>): string | null {
  const earlier = earlierCheckpoints(source);
  const root = dirname(source.dir);
  return earlier.length ? `use an earlier checkpoint (${earlier.join(', ')} in ${shown(root)}; e.g. ${shown(join(root, earlier[earlier.length - 1]!))})` : null;
}

/** The first tensor (file order) holding a NaN or an infinity, or null. */
function firstNonFinite(tensors: ReadonlyMap<string, HostTensor>): { name: string; count: number; index: number; value: number; size: number } | null {
  for (const [name, t] of tensors) {
    const d = t.data;
    let count = 0;
    let index = -1;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) {
        if (index < 0) index = i;
        count++;
      }
    }
    if (count) return { name, count, index, value: d[index]!, size: d.length };
  }
  return null;
}

/**
 * Read the source's model.safetensors, verified (the SHA-256 recorded for it, every value finite),
 * and its tensors under plain Time-MoE names: a checkpoint trained with optim.lora has its adapters
 * merged into the weights (W + alpha/rank · B A, src/model/lora.ts). Every reader of a model source
 * comes through here.
 */
export async function readSourceTensors(source: ModelSource): Promise<{ file: SafetensorsFile; tensors: ReadonlyMap<string, HostTensor> }> {
  const expected =
    source.kind === 'checkpoint'
      ? { sha256: source.state.files.model.sha256, bytes: source.state.files.model.bytes, where: 'state.json' }
      : source.sums
        ? { sha256: source.sums.get(MODEL_FILE)!, bytes: null, where: SUMS_FILE }
        : null;
  const hint = source.kind === 'checkpoint' ? earlierHint(source) : null;
  const damaged = (detail: string) =>
    new CheckpointError(
      source.modelFile,
      `${detail} (changed or damaged after it was written)`,
      source.kind === 'checkpoint' ? `Restore the file from a copy${hint ? `, or ${hint}` : ''}` : SUMS_FIX,
    );
  if (expected?.bytes != null) {
    let size: number;
    try {
      size = statSync(source.modelFile).size;
    } catch (e) {
      throw new CheckpointError(
        source.modelFile,
        `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        `A checkpoint holds ${MODEL_FILE} beside state.json: restore it${hint ? `, or ${hint}` : ''}`,
      );
    }
    if (size !== expected.bytes)
      throw damaged(`is ${size.toLocaleString('en-US')} bytes, but ${expected.where} records ${expected.bytes.toLocaleString('en-US')}`);
  }
  const file = await readSafetensors(source.modelFile);
  if (expected && file.sha256 !== expected.sha256) throw damaged(`contents do not match the SHA-256 recorded in ${expected.where}`);
  const bad = firstNonFinite(file.tensors);
  if (bad) {
    const what = `tensor ${bad.name} holds ${bad.count.toLocaleString('en-US')} non-finite value${bad.count === 1 ? '' : 's'} of ${bad.size.toLocaleString('en-US')} (the first, at index ${bad.index}, is ${String(bad.value)})`;
    throw new CheckpointError(
      source.modelFile,
      what,
      source.kind === 'checkpoint'
        ? `The run that saved it had broken down (diverged) by then, so these weights cannot forecast or be trained on: ${hint ?? 'there is no earlier complete checkpoint beside it, so train again (lower optim.lr, keep stability.guards on)'}`
        : 'These weights are broken: export them again from a good checkpoint (node export.js --checkpoint <run>/checkpoints/step-N --out <folder>)',
    );
  }
  const lora = sourceLora(source);
  if (!lora) return { file, tensors: file.tensors };
  const layout = new TimeMoeModel(new MetaRuntime(namedTarget('lavapipe').caps), source.model, 0, {}, lora);
  try {
    return { file, tensors: mergeLora(file.tensors, layout.adapters, source.modelFile) };
  } catch (e) {
    throw new CheckpointError(
      source.modelFile,
      `cannot merge the LoRA adapters its config names (${(e as Error).message})`,
      'Use the checkpoint unmodified, with the state.json it was saved with',
    );
  }
}

const HEAD_RE = /^(lm_heads\.|classifier\.)/;

/**
 * Load the source's weights into a model built with `source.model` (names and shapes checked
 * first). Adapters of the model being trained (group lora) keep their init; with `backboneOnly`
 * so do its heads, and the source's heads are not read (a classifier on a forecaster's backbone).
 * `tensors`: what readSourceTensors returned (read and verified before the device was opened);
 * without it the file is read here, through readSourceTensors all the same.
 */
export async function loadSourceWeights(
  source: ModelSource,
  params: readonly Parameter[],
  weights?: WeightStores,
  opts: { backboneOnly?: boolean; tensors?: ReadonlyMap<string, HostTensor> } = {},
): Promise<void> {
  const skipHead = !!opts.backboneOnly;
  const targets = params.filter((p) => p.group !== 'lora' && !(skipHead && p.group === 'head'));
  const keep = (name: string) => !(skipHead && HEAD_RE.test(name));
  const store = weights ?? ((p: Parameter) => tensorStore(p.data));
  const tensors = opts.tensors ?? (await readSourceTensors(source)).tensors;
  await loadModelWeightsFiltered(source.modelFile, targets, store, keep, tensors);
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
