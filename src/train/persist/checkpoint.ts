/**
 * Training checkpoints. A checkpoint is a directory `<root>/step-<N>/` (or `<root>/<name>/`) with
 *   model.safetensors      weights under the Hugging Face Time-MoE names (loadable into HF),
 *   optimizer.safetensors  AdamW moments as `<name>.exp_avg` / `<name>.exp_avg_sq`,
 *   state.json             step counters, data-loader and RNG state, the training config, metrics
 *                          and the SHA-256 of both tensor files;
 * and `<root>/latest` names the newest one (never a `diverged-step-<N>` checkpoint: those hold the
 * state of a run whose validation loss diverged, kept for inspection only).
 *
 * Crash safety (src/util/atomic-write.ts): everything is written and fsynced in
 * `<target>.tmp-<pid>-<hex>` beside the target, then renamed into place (an existing target is
 * first renamed to `<target>.old-<pid>-<hex>` and removed after), then `latest` is replaced via
 * temp file + rename. A kill at any point leaves the previous checkpoint loadable:
 * `latestCheckpoint` follows `latest`, falls back to the `.old-` copy when a kill landed between
 * the two renames, and never returns a `.tmp-` directory. The next save cleans up after dead
 * writers. One writer per root at a time.
 *
 * Loading validates every file, shape and checksum before touching the model or optimizer, so a
 * bad checkpoint throws a CheckpointError and leaves both as they were.
 */
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Tensor } from '../../kernels/tensor.ts';
import type { Parameter } from '../../model/parameter.ts';
import { tensorStore, type OptimizerSlot, type StateStore, type StoreSlot, type WeightStores } from './stores.ts';
import { pidAlive } from '../../util/process.ts';
import { IoError, OLD_RE, TEMP_RE as TMP_RE, replaceFolderAtomic, syncFolder, writeFileAtomic, writeSyncedText } from '../../util/atomic-write.ts';
import { encodeHeader } from './safetensors-bytes.ts';
import {
  CheckpointError,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type HostTensor,
  type SafetensorsFile,
  type TensorSource,
} from './safetensors.ts';

export { CheckpointError } from './safetensors.ts';

/**
 * A checkpoint written in a newer format than this build reads: the run belongs to a newer
 * webgpu-moe. Readers stop on it (exit 2) rather than skip it: skipping would resume from an older
 * step and move the newer checkpoint aside.
 */
export class NewerCheckpointError extends CheckpointError {
  constructor(
    file: string,
    readonly version: number,
  ) {
    super(
      file,
      `checkpoint format version ${version} (the "version" field of state.json); this webgpu-moe reads format version ${CHECKPOINT_VERSION}`,
      `A newer webgpu-moe wrote it, and reads it: update this copy of webgpu-moe (git pull, npm install) to use it. Nothing was moved or changed`,
    );
    this.name = 'NewerCheckpointError';
  }
}

export const CHECKPOINT_FORMAT = 'webgpu-moe-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const LATEST_FILE = 'latest';

const JsonObject = z.record(z.string(), z.json());

/** What the trainer hands to saveCheckpoint (defaults fill what it leaves out). */
const trainingStateShape = {
  /** Optimizer steps taken. */
  step: z.number().int().nonnegative(),
  /** Micro-batches into the current step (gradient accumulation). */
  microStep: z.number().int().nonnegative().default(0),
  epoch: z.number().int().nonnegative().default(0),
  /** The data pipeline's own resumable state; opaque here. */
  dataLoader: JsonObject.default({}),
  /** Named RNG states (Rng.state is one u32). */
  rng: z.record(z.string(), z.number().int().min(0).max(0xffffffff)).default({}),
  /** The full training config; opaque here. */
  config: JsonObject.default({}),
  /** Metrics summary (JSON has no NaN/Infinity: they are stored as null). */
  metrics: JsonObject.default({}),
  /** Optimizer scalars (its step count, hyper-parameters); the moments live in optimizer.safetensors. */
  optimizer: JsonObject.default({}),
};
export const TrainingStateSchema = z.object(trainingStateShape).strict();
export type TrainingStateInput = z.input<typeof TrainingStateSchema>;

const FileInfoSchema = z
  .object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/), tensors: z.number().int().nonnegative() })
  .strict();
const HeadSchema = z.object({ format: z.string(), version: z.number() }).loose();
export const CheckpointStateSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.literal(CHECKPOINT_VERSION),
    ...trainingStateShape,
    createdAt: z.iso.datetime(),
    files: z.object({ model: FileInfoSchema, optimizer: FileInfoSchema }).strict(),
  })
  .strict();
export type CheckpointState = z.output<typeof CheckpointStateSchema>;

function asStore(x: Tensor | StateStore): StateStore {
  return 'load' in x ? x : tensorStore(x);
}

export type OptimizerStateInput = readonly (OptimizerSlot | StoreSlot)[] | ReadonlyMap<Parameter, { m: Tensor; v: Tensor }>;

const gpuWeights: WeightStores = (p) => tensorStore(p.data);

export type CheckpointPhase =
  'tmp-created' | 'writing' | 'model-written' | 'optimizer-written' | 'state-written' | 'synced' | 'old-moved-aside' | 'renamed' | 'latest-updated' | 'done';
export interface CheckpointProgress {
  phase: CheckpointPhase;
  /** For 'writing': the file and the bytes written so far. */
  file?: string;
  bytesWritten?: number;
}

export interface SaveOptions {
  /** Directory name under the root (default `step-<step>`). */
  name?: string;
  /** Keep only the newest K `step-*` checkpoints (by step number), and K `diverged-step-*`; default keeps all. */
  keep?: number;
  /**
   * Point `latest` at it (default true). False for the state of a diverged run: it is kept for
   * inspection, but `--resume` must not continue from it.
   */
  latest?: boolean;
  /** fsync files and directories (default true; tests of logic alone may turn it off). */
  fsync?: boolean;
  /** Called between the stages of the write (tests use it to crash at a chosen point). */
  onProgress?: (e: CheckpointProgress) => void | Promise<void>;
}

export interface SavedCheckpoint {
  path: string;
  name: string;
  state: CheckpointState;
}

/** Host-side contents of a checkpoint, for writers without a GPU model at hand. */
export interface CheckpointData {
  model: ReadonlyMap<string, TensorSource>;
  optimizer: ReadonlyMap<string, TensorSource>;
  state: TrainingStateInput;
}

/** A writer's leftovers beside a checkpoint (src/util/atomic-write.ts names them). */
export { TMP_RE, OLD_RE };
export const STEP_RE = /^step-(\d+)$/;
/** A checkpoint saved while the validation loss had diverged (run/save.ts): never `latest`. */
export const DIVERGED_RE = /^diverged-step-(\d+)$/;

function checkName(root: string, name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.=-]*$/.test(name) || TMP_RE.test(name) || OLD_RE.test(name) || name === LATEST_FILE)
    throw new CheckpointError(
      join(root, name),
      `"${name}" is not a usable checkpoint name`,
      'Use letters, digits, "_", "-", "." and "=" (e.g. step-100), not "latest" or a .tmp-/.old- name',
    );
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Point `<root>/latest` at `name`, or remove it (null): after a resume from an older checkpoint
 * moved the newer ones aside, `latest` must not name a folder that is gone.
 */
export async function pointLatest(root: string, name: string | null): Promise<void> {
  try {
    if (name === null) await rm(join(root, LATEST_FILE), { force: true });
    else writeLatest(root, name, true);
  } catch (e) {
    throw IoError.from(e, join(root, LATEST_FILE), 'write') ?? e;
  }
}

/** Replace `<root>/latest` atomically; on failure the temp file is removed and `latest` is as it was. */
function writeLatest(root: string, name: string, fsync: boolean): void {
  writeFileAtomic(join(root, LATEST_FILE), `${name}\n`, { fsync, syncFolder: fsync });
}

/**
 * Undo what dead writers left: remove their `.tmp-` leftovers, and for a `.old-` directory either
 * put it back (the kill landed between the two renames, so its target is missing) or remove it
 * (the replacement is in place).
 */
async function recover(root: string): Promise<void> {
  for (const entry of await readdir(root)) {
    const tmp = TMP_RE.exec(entry);
    if (tmp && !pidAlive(Number(tmp[1]))) {
      await rm(join(root, entry), { recursive: true, force: true });
      continue;
    }
    const old = OLD_RE.exec(entry);
    if (old && !pidAlive(Number(old[2]))) {
      const target = join(root, old[1]!);
      if (await exists(target)) await rm(join(root, entry), { recursive: true, force: true });
      else await rename(join(root, entry), target);
    }
  }
}

/** Remove checkpoints of one family (`step-*`, `diverged-step-*`) beyond the newest `keep`, never one named in `protect`. */
async function prune(root: string, keep: number, protect: ReadonlySet<string>, family: RegExp): Promise<string[]> {
  const steps: { name: string; step: number }[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const m = family.exec(entry.name);
    if (m && entry.isDirectory()) steps.push({ name: entry.name, step: Number(m[1]) });
  }
  steps.sort((a, b) => b.step - a.step);
  const removed: string[] = [];
  for (const { name } of steps.slice(keep)) {
    if (protect.has(name)) continue;
    await rm(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

const META = (content: string) => ({ format: 'pt', producer: 'webgpu-moe', content });
const MODEL_META = META('weights');
const OPTIMIZER_META = META('adamw exp_avg, exp_avg_sq');

/** Bytes a checkpoint of these tensors takes on disk (headers + data; state.json is a few KiB more). */
export function checkpointBytes(data: Pick<CheckpointData, 'model' | 'optimizer'>): number {
  const file = (tensors: ReadonlyMap<string, TensorSource>, meta: Record<string, string>) => {
    const entries = [...tensors].map(([name, t]) => ({ name, shape: t.shape }));
    return encodeHeader(entries, meta).length + entries.reduce((a, e) => a + 4 * e.shape.reduce((x, y) => x * y, 1), 0);
  };
  return file(data.model, MODEL_META) + file(data.optimizer, OPTIMIZER_META) + 16384;
}

/** Round-trip through JSON (NaN -> null, as state.json will hold it), then validate. */
function normaliseState(root: string, state: TrainingStateInput): z.output<typeof TrainingStateSchema> {
  const r = TrainingStateSchema.safeParse(JSON.parse(JSON.stringify(state)));
  if (!r.success)
    throw new CheckpointError(root, `bad training state (${z.prettifyError(r.error).replace(/\n/g, ' ')})`, 'Pass the fields of TrainingStateSchema');
  return r.data;
}

/**
 * Write a checkpoint from host data (or lazy readers) atomically under `root`. The GPU-facing
 * saveCheckpoint builds on this; a crash-test child process calls it directly.
 */
export async function writeCheckpoint(root: string, data: CheckpointData, opts: SaveOptions = {}): Promise<SavedCheckpoint> {
  const base = normaliseState(root, data.state);
  const name = opts.name ?? `step-${base.step}`;
  // Where the write was when the file system refused it (the file as it would be named in place).
  const at = { file: join(root, name) };
  try {
    return await writeCheckpointIn(root, name, base, data, opts, at);
  } catch (e) {
    // Disk full and other I/O errors: name the file and the space the whole checkpoint needs.
    throw IoError.from(e, at.file, 'write', { bytes: checkpointBytes(data), what: 'the checkpoint' }) ?? e;
  }
}

async function writeCheckpointIn(
  root: string,
  name: string,
  base: z.output<typeof TrainingStateSchema>,
  data: CheckpointData,
  opts: SaveOptions,
  at: { file: string },
): Promise<SavedCheckpoint> {
  checkName(root, name);
  if (opts.keep !== undefined && !(Number.isInteger(opts.keep) && opts.keep >= 1))
    throw new CheckpointError(root, `keep must be an integer >= 1, got ${opts.keep}`, 'Pass keep >= 1 or leave it out to keep every checkpoint');
  const fsync = opts.fsync ?? true;
  const report = async (e: CheckpointProgress) => {
    if (opts.onProgress) await opts.onProgress(e);
  };
  const target = join(root, name);
  await mkdir(root, { recursive: true });
  await recover(root);

  let state!: CheckpointState;
  await replaceFolderAtomic(
    target,
    async (tmp) => {
      await report({ phase: 'tmp-created' });
      const write = (file: string, tensors: ReadonlyMap<string, TensorSource>, meta: Record<string, string>) => {
        at.file = join(target, file);
        return writeSafetensors(join(tmp, file), tensors, meta, {
          atomic: false,
          fsync,
          onProgress: (bytesWritten) => report({ phase: 'writing', file, bytesWritten }),
        });
      };
      const model = await write(MODEL_FILE, data.model, MODEL_META);
      await report({ phase: 'model-written' });
      const optimizer = await write(OPTIMIZER_FILE, data.optimizer, OPTIMIZER_META);
      await report({ phase: 'optimizer-written' });
      state = {
        format: CHECKPOINT_FORMAT,
        version: CHECKPOINT_VERSION,
        ...base,
        createdAt: new Date().toISOString(),
        files: { model: { ...model, tensors: data.model.size }, optimizer: { ...optimizer, tensors: data.optimizer.size } },
      };
      at.file = join(target, STATE_FILE);
      await writeSyncedText(join(tmp, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, fsync);
      await report({ phase: 'state-written' });
      if (fsync) syncFolder(tmp);
      await report({ phase: 'synced' });
    },
    {
      // The root is synced once the new folder is in place; `latest` moves before the old one goes.
      syncParent: fsync,
      onMovedAside: () => report({ phase: 'old-moved-aside' }),
      afterSwap: async () => {
        at.file = join(root, LATEST_FILE);
        await report({ phase: 'renamed' });
        if (opts.latest ?? true) {
          writeLatest(root, name, fsync);
          await report({ phase: 'latest-updated' });
        }
      },
    },
  );
  if (opts.keep !== undefined) for (const family of [STEP_RE, DIVERGED_RE]) await prune(root, opts.keep, new Set([name]), family);
  await report({ phase: 'done' });
  return { path: target, name, state };
}

interface Slot {
  param: Parameter;
  m: StateStore;
  v: StateStore;
}

/** Resolve the optimizer state to parameters, checking names and sizes. */
function resolveSlots(where: string, params: readonly Parameter[], input: OptimizerStateInput | undefined): Slot[] {
  if (!input) return [];
  const list: { name: string; m: Tensor | StateStore; v: Tensor | StateStore; param?: Parameter }[] =
    input instanceof Map
      ? [...input].map(([param, s]) => ({ name: param.name, m: s.m, v: s.v, param }))
      : [...(input as readonly (OptimizerSlot | StoreSlot)[])];
  const byName = new Map(params.map((p) => [p.name, p]));
  const seen = new Set<string>();
  return list.map((s) => {
    const param = s.param ?? byName.get(s.name);
    if (!param || !byName.has(param.name))
      throw new CheckpointError(where, `optimizer state for ${s.name}, which is not a parameter of this model`, 'Key optimizer state by Parameter.name');
    if (seen.has(param.name)) throw new CheckpointError(where, `optimizer state for ${param.name} is given twice`, 'Pass one {name, m, v} per parameter');
    seen.add(param.name);
    for (const [k, t] of [
      ['m', s.m],
      ['v', s.v],
    ] as const)
      if (t.size !== param.data.size)
        throw new CheckpointError(
          where,
          `optimizer ${k} for ${param.name} has ${t.size} elements, the parameter has ${param.data.size}`,
          'Allocate m and v shaped like the parameter',
        );
    return { param, m: asStore(s.m), v: asStore(s.v) };
  });
}

/**
 * Lazy sources for GPU tensors, one per state-dict entry. A stacked tensor is downloaded once
 * and dropped after its last expert slice is written, so memory stays bounded.
 */
function gpuSources(items: readonly { store: StateStore; param: Parameter; suffix: string }[]): Map<string, TensorSource> {
  const out = new Map<string, TensorSource>();
  const cache = new Map<StateStore, { data: Promise<Float32Array>; left: number }>();
  for (const { store: tensor, param, suffix: sfx } of items) {
    const entries = param.stateEntries();
    for (const e of entries) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      const read = async () => {
        let c = cache.get(tensor);
        if (!c) cache.set(tensor, (c = { data: tensor.readF32(), left: entries.length }));
        if (--c.left === 0) cache.delete(tensor);
        return (await c.data).subarray(e.offset, e.offset + n);
      };
      out.set(`${e.name}${sfx}`, { shape: e.shape, read });
    }
  }
  return out;
}

/**
 * Save model weights, optimizer moments and training state as `<root>/step-<state.step>` (or
 * `opts.name`), atomically, and point `<root>/latest` at it. Await it before the next optimizer
 * step: tensors are downloaded while the files are written.
 */
export async function saveCheckpoint(
  root: string,
  args: { params: readonly Parameter[]; weights?: WeightStores; optimizerState?: OptimizerStateInput; state: TrainingStateInput },
  opts: SaveOptions = {},
): Promise<SavedCheckpoint> {
  const slots = resolveSlots(root, args.params, args.optimizerState);
  const weights = args.weights ?? gpuWeights;
  const model = gpuSources(args.params.map((p) => ({ store: weights(p), param: p, suffix: '' })));
  const optimizer = gpuSources(
    slots.flatMap((s) => [
      { store: s.m, param: s.param, suffix: '.exp_avg' },
      { store: s.v, param: s.param, suffix: '.exp_avg_sq' },
    ]),
  );
  return writeCheckpoint(root, { model, optimizer, state: args.state }, opts);
}

/** The checkpoint name `<root>/latest` holds, or null (missing, empty, or not a plain name). */
export async function readLatestName(root: string): Promise<string | null> {
  try {
    const name = (await readFile(join(root, LATEST_FILE), 'utf8')).trim();
    return name.length > 0 && !name.includes('/') && !name.includes('\\') && name !== '.' && name !== '..' ? name : null;
  } catch {
    return null;
  }
}

/**
 * The newest complete checkpoint directory under `root`, or null if there is none: the one
 * `latest` names; its `.old-` copy if a kill landed mid-replace; else the highest complete step-*.
 */
export async function latestCheckpoint(root: string): Promise<string | null> {
  if (!(await exists(root))) return null;
  const entries = await readdir(root);
  const complete = (name: string) => exists(join(root, name, STATE_FILE));
  const name = await readLatestName(root);
  if (name) {
    if (await complete(name)) return join(root, name);
    for (const e of entries) if (OLD_RE.exec(e)?.[1] === name && (await complete(e))) return join(root, e);
  }
  const steps = entries.flatMap((e) => {
    const m = STEP_RE.exec(e);
    return m ? [{ e, step: Number(m[1]) }] : [];
  });
  steps.sort((a, b) => b.step - a.step);
  for (const { e } of steps) if (await complete(e)) return join(root, e);
  return null;
}

/** Read and validate state.json. */
export async function readCheckpointState(dir: string): Promise<CheckpointState> {
  const file = join(dir, STATE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      file,
      code === 'ENOENT' ? 'missing' : `not valid JSON (${(e as Error).message})`,
      'This is not a complete checkpoint: load another one (train.js --resume-from <step>)',
    );
  }
  const head = HeadSchema.safeParse(raw);
  if (!head.success || head.data.format !== CHECKPOINT_FORMAT)
    throw new CheckpointError(file, `not a ${CHECKPOINT_FORMAT} state file`, 'Point at a directory written by saveCheckpoint');
  if (head.data.version > CHECKPOINT_VERSION) throw new NewerCheckpointError(file, head.data.version);
  if (head.data.version !== CHECKPOINT_VERSION)
    throw new CheckpointError(
      file,
      `checkpoint format version ${head.data.version} (the "version" field of state.json); this webgpu-moe reads format version ${CHECKPOINT_VERSION}`,
      'Convert it, or start a fresh run',
    );
  const r = CheckpointStateSchema.safeParse(raw);
  if (!r.success)
    throw new CheckpointError(
      file,
      `invalid (${z.prettifyError(r.error).replace(/\n/g, ' ')})`,
      'The file was edited or damaged: restore it, or load an older checkpoint (train.js --resume-from <step>)',
    );
  return r.data;
}

interface Staged {
  store: StateStore;
  data: Float32Array;
}

/**
 * Assemble full tensors from state-dict entries. Every entry must be present with its exact
 * shape, and the file may hold nothing else. Returns the writes, or the list of problems.
 */
function stage(
  items: readonly { store: StateStore; param: Parameter; suffix: string }[],
  shapes: ReadonlyMap<string, readonly number[]>,
  dict: ReadonlyMap<string, HostTensor> | null,
): { staged: Staged[]; problems: string[] } {
  const problems: string[] = [];
  const staged: Staged[] = [];
  const used = new Set<string>();
  for (const { store, param, suffix: sfx } of items) {
    const data = new Float32Array(store.size);
    for (const e of param.stateEntries()) {
      const name = `${e.name}${sfx}`;
      const shape = shapes.get(name);
      if (!shape) {
        problems.push(`missing tensor ${name} [${e.shape.join(', ')}]`);
        continue;
      }
      used.add(name);
      if (shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])) {
        problems.push(`${name}: shape [${shape.join(', ')}] in the file, the model needs [${e.shape.join(', ')}]`);
        continue;
      }
      const src = dict?.get(name);
      if (src) data.set(src.data, e.offset);
    }
    staged.push({ store, data });
  }
  for (const name of shapes.keys()) if (!used.has(name)) problems.push(`unexpected tensor ${name} (not in this model)`);
  return { staged, problems };
}

function mismatch(file: string, problems: string[], fix: string): CheckpointError {
  const shown = problems.slice(0, 12).join('; ');
  return new CheckpointError(
    file,
    `does not match the model (${problems.length} problem${problems.length === 1 ? '' : 's'}: ${shown}${problems.length > 12 ? '; …' : ''})`,
    fix,
  );
}

const OTHER_CONFIG =
  'It was written for another model config (see "config" in state.json): build the model with that config, or start a fresh run instead of resuming';

async function checkedRead(file: string, expect: { sha256: string; bytes: number } | null): Promise<SafetensorsFile> {
  const f = await readSafetensors(file);
  if (expect && f.sha256 !== expect.sha256)
    throw new CheckpointError(
      file,
      `contents do not match the SHA-256 recorded in state.json (damaged after it was written)`,
      'Restore the file from a copy, or load an older checkpoint (train.js --resume-from <step>)',
    );
  return f;
}

/**
 * Load a checkpoint into the model (and optimizer moments, when given) and return its state.
 * `dir` is a checkpoint directory or a root holding `latest`. Everything is validated first
 * (shapes via the headers, then checksums and data); on any problem a CheckpointError is thrown
 * and nothing was written. To resume the optimizer, allocate its m/v for every parameter first.
 */
export async function loadCheckpoint(
  dir: string,
  args: { params: readonly Parameter[]; weights?: WeightStores; optimizerState?: OptimizerStateInput },
): Promise<CheckpointState> {
  let ckpt = dir;
  if (!(await exists(join(dir, STATE_FILE)))) {
    const latest = await latestCheckpoint(dir);
    if (!latest)
      throw new CheckpointError(
        dir,
        'holds no checkpoint (no state.json, no usable latest pointer or step-* directory)',
        'Pass a checkpoint directory or the root that saveCheckpoint wrote to',
      );
    ckpt = latest;
  }
  const state = await readCheckpointState(ckpt);
  const slots = resolveSlots(ckpt, args.params, args.optimizerState);
  const weights = args.weights ?? gpuWeights;
  const modelItems = args.params.map((p) => ({ store: weights(p), param: p, suffix: '' }));
  const optItems = slots.flatMap((s) => [
    { store: s.m, param: s.param, suffix: '.exp_avg' },
    { store: s.v, param: s.param, suffix: '.exp_avg_sq' },
  ]);
  const modelFile = join(ckpt, MODEL_FILE);
  const optFile = join(ckpt, OPTIMIZER_FILE);

  // Shapes first, from the headers alone: a config mismatch fails before gigabytes are read.
  const shapesOf = async (file: string) => new Map((await readSafetensorsHeader(file)).entries.map((e) => [e.name, e.shape] as const));
  const modelShapes = await shapesOf(modelFile);
  const m1 = stage(modelItems, modelShapes, null);
  if (m1.problems.length) throw mismatch(modelFile, m1.problems, OTHER_CONFIG);
  const optShapes = slots.length ? await shapesOf(optFile) : null;
  if (optShapes?.size === 0)
    throw new CheckpointError(
      optFile,
      'holds no optimizer state (the checkpoint was saved without one)',
      'Leave optimizerState out to load the weights alone, and start the optimizer fresh',
    );
  if (optShapes) {
    const o1 = stage(optItems, optShapes, null);
    if (o1.problems.length)
      throw mismatch(optFile, o1.problems, `${OTHER_CONFIG}; or pass exactly one {name, m, v} per parameter the checkpoint's optimizer covered`);
  }

  const model = await checkedRead(modelFile, state.files.model);
  const opt = optShapes ? await checkedRead(optFile, state.files.optimizer) : null;
  const writes = stage(modelItems, modelShapes, model.tensors).staged;
  if (opt && optShapes) writes.push(...stage(optItems, optShapes, opt.tensors).staged);
  // Every check passed: only now touch the model and the optimizer.
  for (const w of writes) w.store.load(w.data);
  return state;
}

/**
 * Load weights alone from any safetensors file with Hugging Face Time-MoE names (ours, or one
 * exported by HF in f32/f16/bf16). Validates fully before writing.
 */
export async function loadModelWeights(file: string, params: readonly Parameter[], weights: WeightStores = gpuWeights): Promise<void> {
  await loadModelWeightsFiltered(file, params, weights, () => true);
}

/**
 * The same for the tensors `keep` accepts (model.init.from into a classifier: the backbone only),
 * or from tensors already read (`tensors`: a LoRA checkpoint's merged weights).
 */
export async function loadModelWeightsFiltered(
  file: string,
  params: readonly Parameter[],
  weights: WeightStores,
  keep: (name: string) => boolean,
  tensors?: ReadonlyMap<string, HostTensor>,
): Promise<void> {
  const items = params.map((p) => ({ store: weights(p), param: p, suffix: '' }));
  const all = tensors ? [...tensors].map(([name, t]) => ({ name, shape: t.shape })) : (await readSafetensorsHeader(file)).entries;
  const shapes = new Map(all.filter((e) => keep(e.name)).map((e) => [e.name, e.shape] as const));
  const first = stage(items, shapes, null);
  if (first.problems.length) throw mismatch(file, first.problems, 'Build the model with the config these weights were trained with');
  const data = tensors ?? (await readSafetensors(file)).tensors;
  for (const w of stage(items, shapes, data).staged) w.store.load(w.data);
}
