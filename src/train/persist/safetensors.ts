/**
 * The safetensors file format (https://huggingface.co/docs/safetensors), written and read here
 * because no well-kept npm package exists. Layout: an 8-byte little-endian u64 N, N bytes of UTF-8
 * JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}` padded with
 * spaces to a multiple of 8, then the raw little-endian tensor bytes; offsets are relative to the
 * start of that data and must tile it exactly (the Rust reader rejects gaps, overlaps and trailing
 * bytes, so we write and check the same rule). We write F32 (checkpoints), or F16 / BF16 for
 * exports (rounded to nearest even); we read F32, F16, BF16 and F64, widening to f32, since
 * Hugging Face checkpoints are often bf16.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { z } from 'zod';
import { f16BitsToF32 } from '../../kernels/f16.ts';
import { DTYPE_BYTES, LITTLE_ENDIAN, encodeHeader, product, sortedNames, tensorBytes, type ReadDType, type WriteDType } from './safetensors-bytes.ts';
import { writeFileDurable } from '../../util/atomic-write.ts';

/** A checkpoint or safetensors file that cannot be used: names the file, the problem and the fix. */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${file}: ${problem}. ${fix}`);
    this.name = 'CheckpointError';
  }
}

/** A tensor to write: its data now, or a reader called once, when its bytes are due (bounded memory). */
export type TensorSource = { shape: readonly number[]; data: Float32Array } | { shape: readonly number[]; read: () => Promise<Float32Array> };

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface WriteSafetensorsOptions {
  /** fsync the file before returning (default true). */
  fsync?: boolean;
  /** Write to a temp file beside `path` and rename it into place (default true; src/util/atomic-write.ts). */
  atomic?: boolean;
  /** Bytes per write call (default 8 MiB). */
  chunkBytes?: number;
  /** Called after every chunk with the bytes written so far (tests use it to crash mid-file). */
  onProgress?: (bytesWritten: number) => void | Promise<void>;
  /** The dtype every tensor is stored in (default F32); F16 / BF16 round to nearest even. */
  dtype?: WriteDType;
}

export interface WriteResult {
  bytes: number;
  sha256: string;
}

/** Every dtype the format defines, so an unsupported one is told apart from garbage. */
const KNOWN_DTYPES = new Set(['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']);

/** The Rust reader refuses headers over 100 MB; so do we (it also bounds our allocation). */
export const MAX_HEADER_BYTES = 100_000_000;

function checkTensorName(path: string, name: string, shape: readonly number[]): void {
  if (name === '__metadata__' || name.length === 0)
    throw new CheckpointError(path, `cannot write a tensor named "${name}"`, 'Rename the tensor (that key is reserved by the format)');
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new CheckpointError(path, `tensor ${name} has bad shape [${shape.join(', ')}]`, 'Pass non-negative integer dimensions');
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, pos + done);
    done += bytesWritten;
  }
}

/**
 * Write F32 tensors, sorted by name, to a safetensors file. Deterministic bytes for the same input.
 * Returns the file size and its SHA-256 (computed while writing, so no second pass).
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, TensorSource>,
  metadata?: Record<string, string>,
  opts: WriteSafetensorsOptions = {},
): Promise<WriteResult> {
  const names = sortedNames(tensors.keys());
  const entries = names.map((name) => ({ name, source: tensors.get(name)! }));
  for (const { name, source } of entries) checkTensorName(path, name, source.shape);
  if (metadata)
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new CheckpointError(path, `metadata ${k} is not a string`, 'safetensors metadata maps strings to strings');
  const dtype = opts.dtype ?? 'F32';
  const header = encodeHeader(
    entries.map((e) => ({ name: e.name, shape: e.source.shape })),
    metadata,
    dtype,
  );
  const chunk = Math.max(4, Math.floor((opts.chunkBytes ?? 8 << 20) / 4) * 4);
  const hash = createHash('sha256');
  const write = async (fh: FileHandle): Promise<number> => {
    await writeAll(fh, header, 0);
    hash.update(header);
    let pos = header.length;
    for (const { name, source } of entries) {
      const data = 'data' in source ? source.data : await source.read();
      const want = product(source.shape);
      if (data.length !== want)
        throw new CheckpointError(
          path,
          `tensor ${name} has ${data.length} values for shape [${source.shape.join(', ')}] (${want})`,
          'Pass data matching the shape',
        );
      for (let b = 0; b < data.byteLength; b += chunk) {
        const bytes = tensorBytes(dtype, data, b / 4, Math.min(data.byteLength, b + chunk) / 4);
        await writeAll(fh, bytes, pos);
        hash.update(bytes);
        pos += bytes.length;
        if (opts.onProgress) await opts.onProgress(pos);
      }
    }
    return pos;
  };
  const bytes = await writeFileDurable(path, write, { atomic: opts.atomic ?? true, fsync: opts.fsync ?? true });
  return { bytes, sha256: hash.digest('hex') };
}

const EntrySchema = z
  .object({
    dtype: z.string(),
    shape: z.array(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)),
    data_offsets: z.tuple([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)]),
  })
  .strict();
const MetadataSchema = z.record(z.string(), z.string());

export interface HeaderEntry {
  name: string;
  dtype: ReadDType;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in file order (ascending offsets). */
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  /** Where the data section starts in the file (8 + N). */
  dataStart: number;
  fileBytes: number;
}

function issueText(err: z.ZodError): string {
  const i = err.issues[0]!;
  return `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`;
}

/**
 * Validate a header (the bytes after the length prefix) against the file's size, with the rules
 * of the reference reader: known dtypes, byte lengths that match the shapes, offsets that tile the
 * data section from 0 to its end with no gap, overlap or trailing byte.
 */
export function parseHeader(path: string, headerBytes: Uint8Array, fileBytes: number): SafetensorsHeader {
  const rewrite = 'The file is damaged or not a safetensors file: write it again (or restore it from a copy)';
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    if (!text.startsWith('{')) throw new Error('header does not start with "{"');
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(path, `header is not valid UTF-8 JSON (${(e as Error).message})`, rewrite);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CheckpointError(path, 'header is not a JSON object', rewrite);
  const dataStart = 8 + headerBytes.length;
  const entries: HeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      const m = MetadataSchema.safeParse(raw);
      if (!m.success) throw new CheckpointError(path, `__metadata__ is not a string-to-string map (${issueText(m.error)})`, rewrite);
      metadata = m.data;
      continue;
    }
    const r = EntrySchema.safeParse(raw);
    if (!r.success) throw new CheckpointError(path, `bad header entry for tensor ${name} (${issueText(r.error)})`, rewrite);
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = r.data;
    if (!(dtype in DTYPE_BYTES)) {
      const what = KNOWN_DTYPES.has(dtype) ? `unsupported dtype ${dtype}` : `unknown dtype "${dtype}"`;
      throw new CheckpointError(
        path,
        `tensor ${name} has ${what}`,
        `Convert the checkpoint to one of ${Object.keys(DTYPE_BYTES).join(', ')} (e.g. with PyTorch: tensor.float())`,
      );
    }
    const d = dtype as ReadDType;
    const want = product(shape) * DTYPE_BYTES[d];
    if (end < begin || end - begin !== want)
      throw new CheckpointError(path, `tensor ${name} (${d} [${shape.join(', ')}]) spans bytes [${begin}, ${end}) but needs ${want} bytes`, rewrite);
    entries.push({ name, dtype: d, shape, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataBytes = fileBytes - dataStart;
  let at = 0;
  for (const e of entries) {
    if (e.end > dataBytes)
      throw new CheckpointError(
        path,
        `tensor ${e.name} data_offsets [${e.begin}, ${e.end}) run past the end of the data (${dataBytes} bytes; the file may be truncated)`,
        rewrite,
      );
    if (e.begin !== at)
      throw new CheckpointError(
        path,
        `tensor ${e.name} starts at byte ${e.begin} of the data, expected ${at} (${e.begin < at ? 'it overlaps the previous tensor' : 'there is a gap'})`,
        rewrite,
      );
    at = e.end;
  }
  if (at !== dataBytes) throw new CheckpointError(path, `the tensors cover ${at} data bytes but the file holds ${dataBytes}`, rewrite);
  return { entries, metadata, dataStart, fileBytes };
}

async function readExactly(fh: FileHandle, path: string, into: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    // Reads of at most 1 GiB per call: the OS caps a single read near 2 GiB.
    const { bytesRead } = await fh.read(into, done, Math.min(into.length - done, 1 << 30), pos + done);
    if (bytesRead === 0) throw new CheckpointError(path, `unexpected end of file at byte ${pos + done}`, 'The file is truncated: write it again');
    done += bytesRead;
  }
}

async function readHeaderFrom(fh: FileHandle, path: string, hash?: Hash): Promise<SafetensorsHeader> {
  const fileBytes = (await fh.stat()).size;
  const rewrite = 'The file is damaged or not a safetensors file: write it again (or restore it from a copy)';
  if (fileBytes < 8) throw new CheckpointError(path, `file has ${fileBytes} bytes, shorter than the 8-byte header length`, rewrite);
  const prefix = new Uint8Array(8);
  await readExactly(fh, path, prefix, 0);
  const n = new DataView(prefix.buffer).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES)) throw new CheckpointError(path, `header length ${n} is not between 2 and ${MAX_HEADER_BYTES} bytes`, rewrite);
  if (8n + n > BigInt(fileBytes)) throw new CheckpointError(path, `header length ${n} runs past the end of the ${fileBytes}-byte file (truncated?)`, rewrite);
  const headerBytes = new Uint8Array(Number(n));
  await readExactly(fh, path, headerBytes, 8);
  hash?.update(prefix);
  hash?.update(headerBytes);
  return parseHeader(path, headerBytes, fileBytes);
}

/** Read and validate only the header (cheap: checks shapes before any data is read). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await openForRead(path);
  try {
    return await readHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

async function openForRead(path: string): Promise<FileHandle> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new CheckpointError(path, 'is not a file', 'Pass the path of a .safetensors file');
    return await open(path, 'r');
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(path, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'Check the path and its permissions');
  }
}

/** Widen one tensor's raw little-endian bytes to f32. */
function toF32(dtype: ReadDType, raw: Uint8Array, count: number): Float32Array {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) return new Float32Array(raw.buffer, raw.byteOffset, count);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  const out = new Float32Array(count);
  if (dtype === 'F64') for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
  else if (dtype === 'F16') for (let i = 0; i < count; i++) out[i] = f16BitsToF32(dv.getUint16(i * 2, true));
  else {
    // bf16 is the top half of an f32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = dv.getUint16(i * 2, true) << 16;
  }
  return out;
}

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
  /** The dtype each tensor had in the file (all become f32). */
  dtypes: Map<string, ReadDType>;
  sha256: string;
}

/** Read a whole safetensors file into f32 host arrays, validating its header first. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await openForRead(path);
  const hash = createHash('sha256');
  try {
    const header = await readHeaderFrom(fh, path, hash);
    const tensors = new Map<string, HostTensor>();
    const dtypes = new Map<string, ReadDType>();
    // File order, so the hash covers the file front to back (the tensors tile it exactly).
    for (const e of header.entries) {
      // A fresh buffer per tensor keeps every Float32Array 4-byte aligned whatever the offsets.
      const raw = new Uint8Array(e.end - e.begin);
      await readExactly(fh, path, raw, header.dataStart + e.begin);
      hash.update(raw);
      tensors.set(e.name, { shape: e.shape, data: toF32(e.dtype, raw, product(e.shape)) });
      dtypes.set(e.name, e.dtype);
    }
    return { tensors, metadata: header.metadata, dtypes, sha256: hash.digest('hex') };
  } finally {
    await fh.close();
  }
}
