/**
 * The bytes of a safetensors file (layout in safetensors.ts): the header and the tensors' little-
 * endian data. Platform-free: safetensors.ts writes them to disk on Node, the browser page offers
 * them as a download (src/web/weights.ts).
 */
import { f32ToF16Bits } from '../../kernels/f16.ts';

/** The dtypes we write. */
export type WriteDType = 'F32' | 'F16' | 'BF16';

/** Bytes per element of the dtypes we read. */
export const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2, F64: 8 } as const;
export type ReadDType = keyof typeof DTYPE_BYTES;

/** Whether this host stores numbers little-endian (the file's order): then f32 data is its own bytes. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Sorted by UTF-16 code units (not locale), so the bytes are the same everywhere. */
export function sortedNames(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The 8-byte length prefix plus the space-padded JSON header, for tensors in the given order. */
export function encodeHeader(
  entries: readonly { name: string; shape: readonly number[] }[],
  metadata?: Record<string, string>,
  dtype: WriteDType = 'F32',
): Uint8Array {
  // No prototype, so a tensor called __proto__ is just a key.
  const header = Object.create(null) as Record<string, unknown>;
  if (metadata) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const e of entries) {
    const bytes = product(e.shape) * DTYPE_BYTES[dtype];
    header[e.name] = { dtype, shape: [...e.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad so the data starts 8-byte aligned, as the reference writer does.
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

/** Bytes of a Float32Array as little-endian (a copy only on big-endian hosts). */
function leBytes(data: Float32Array, begin: number, end: number): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset + begin, end - begin);
  if (LITTLE_ENDIAN) return view;
  const out = new Uint8Array(view);
  for (let i = 0; i < out.length; i += 4) out.set([view[i + 3]!, view[i + 2]!, view[i + 1]!, view[i]!], i);
  return out;
}

/** f32 -> bf16 bits, round to nearest even (NaN stays NaN). */
function f32ToBf16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Elements [begin, end) of `data` as little-endian 16-bit floats. */
function halfBytes(dtype: 'F16' | 'BF16', data: Float32Array, begin: number, end: number): Uint8Array {
  const out = new Uint8Array((end - begin) * 2);
  const dv = new DataView(out.buffer);
  if (dtype === 'F16') for (let i = begin; i < end; i++) dv.setUint16((i - begin) * 2, f32ToF16Bits(data[i]!), true);
  else {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = begin; i < end; i++) dv.setUint16((i - begin) * 2, f32ToBf16Bits(bits[i]!), true);
  }
  return out;
}

/** Elements [begin, end) of `data` as `dtype`'s little-endian bytes. */
export function tensorBytes(dtype: WriteDType, data: Float32Array, begin: number, end: number): Uint8Array {
  return dtype === 'F32' ? leBytes(data, begin * 4, end * 4) : halfBytes(dtype, data, begin, end);
}

/** A whole file in memory, tensors sorted by name: the header, then each tensor's bytes (views, not copies, on little-endian hosts). */
export function safetensorsParts(
  tensors: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const names = sortedNames(tensors.keys());
  const entries = names.map((name) => ({ name, ...tensors.get(name)! }));
  for (const e of entries)
    if (e.data.length !== product(e.shape)) throw new Error(`tensor ${e.name} has ${e.data.length} values for shape [${e.shape.join(', ')}]`);
  return [encodeHeader(entries, metadata), ...entries.map((e) => tensorBytes('F32', e.data, 0, e.data.length))];
}
