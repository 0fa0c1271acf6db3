/**
 * The safetensors reader and writer against the format's spec, without a GPU: bytes we write are
 * parsed by an independent minimal parser here, files built by hand from the spec are read, and
 * every kind of damage gives a CheckpointError naming the file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError, readSafetensors, readSafetensorsHeader, writeSafetensors, type TensorSource } from '../../src/train/persist/safetensors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'st-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file laid out as the spec says: u64 LE header length, JSON header, data. */
function buildFile(header: object | string, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The independent parser: no code shared with src/train/persist/safetensors.ts. */
function minimalParse(bytes: Uint8Array): {
  n: number;
  headerText: string;
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  values: Map<string, number[]>;
} {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const header = JSON.parse(headerText);
  const values = new Map<string, number[]>();
  for (const [k, e] of Object.entries(header) as [string, { dtype: string; data_offsets: [number, number] }][]) {
    if (k === '__metadata__') continue;
    const vals: number[] = [];
    for (let o = e.data_offsets[0]; o < e.data_offsets[1]; o += 4) vals.push(dv.getFloat32(8 + n + o, true));
    values.set(k, vals);
  }
  return { n, headerText, header, values };
}

async function expectCheckpointError(path: string, pattern: RegExp): Promise<CheckpointError> {
  const err = await readSafetensors(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  const ce = err as CheckpointError;
  expect(ce.message).toContain(path);
  expect(ce.message).toMatch(pattern);
  expect(ce.fix.length).toBeGreaterThan(0);
  return ce;
}

describe('writeSafetensors', () => {
  const tensors = new Map<string, TensorSource>([
    ['z.last', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['a.first', { shape: [3], data: Float32Array.from([-0, 1.5e-40, Infinity]) }],
    ['m.scalar', { shape: [], data: Float32Array.from([42]) }],
    ['m.empty', { shape: [0, 4], data: new Float32Array(0) }],
    ['lazy', { shape: [2], read: async () => Float32Array.from([7, 8]) }],
  ]);

  it('writes the spec layout: padded header, sorted names, contiguous offsets', async () => {
    const path = join(dir, 'w.safetensors');
    const res = await writeSafetensors(path, tensors, { format: 'pt' });
    const bytes = new Uint8Array(await readFile(path));
    expect(res.bytes).toBe(bytes.length);
    expect(res.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const p = minimalParse(bytes);
    expect(p.n % 8).toBe(0);
    expect(p.headerText.startsWith('{')).toBe(true);
    expect(p.headerText.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(p.headerText.slice(p.headerText.lastIndexOf('}') + 1))).toBe(true);
    expect(p.header.__metadata__).toEqual({ format: 'pt' });
    const names = Object.keys(p.header).filter((k) => k !== '__metadata__');
    expect(names).toEqual(['a.first', 'lazy', 'm.empty', 'm.scalar', 'z.last']);
    let at = 0;
    for (const k of names) {
      const e = p.header[k]!;
      expect(e.dtype).toBe('F32');
      expect(e.data_offsets[0]).toBe(at);
      at = e.data_offsets[1];
    }
    expect(8 + p.n + at).toBe(bytes.length);
    expect(p.header['z.last']!.shape).toEqual([2, 3]);
    expect(p.header['m.scalar']!.shape).toEqual([]);
    expect(p.values.get('z.last')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(p.values.get('lazy')).toEqual([7, 8]);
    expect(Object.is(p.values.get('a.first')![0], -0)).toBe(true);
  });

  it('gives the same bytes whatever the insertion order', async () => {
    const a = join(dir, 'd1.safetensors');
    const b = join(dir, 'd2.safetensors');
    await writeSafetensors(a, tensors, { x: '1' });
    await writeSafetensors(b, new Map([...tensors].reverse()), { x: '1' });
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
  });

  it('round-trips bit-exactly, NaN payloads included', async () => {
    const bits = Uint32Array.from([0x7fc00001, 0xffffffff, 0x80000000, 0x00000001, 0x3f800000, 0x7f800000]);
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(path, new Map([['t', { shape: [6], data: new Float32Array(bits.buffer) }]]), undefined, { chunkBytes: 8 });
    const f = await readSafetensors(path);
    expect([...new Uint32Array(f.tensors.get('t')!.data.buffer, f.tensors.get('t')!.data.byteOffset, 6)]).toEqual([...bits]);
    expect(f.metadata).toEqual({});
    expect(f.dtypes.get('t')).toBe('F32');
  });

  it('refuses a tensor whose data does not match its shape, and leaves no file', async () => {
    const path = join(dir, 'bad-shape.safetensors');
    await expect(writeSafetensors(path, new Map([['t', { shape: [3], data: new Float32Array(2) }]]))).rejects.toThrow(/2 values for shape \[3\]/);
    await expect(readFile(path)).rejects.toThrow();
  });
});

describe('readSafetensors on hand-built files', () => {
  it('reads F32, F16 and BF16 (widened), any key order, unpadded header', async () => {
    const data = new Uint8Array(12 + 6 + 4);
    const dv = new DataView(data.buffer);
    // F16 at [0, 6): 1.0, -2.0, 0.5
    [0x3c00, 0xc000, 0x3800].forEach((h, i) => dv.setUint16(i * 2, h, true));
    // F32 at [6, 18): 3.25, -1, 1e-3 (unaligned on purpose)
    [3.25, -1, 1e-3].forEach((v, i) => dv.setFloat32(6 + i * 4, v, true));
    // BF16 at [18, 22): 1.0, -3.0
    [0x3f80, 0xc040].forEach((h, i) => dv.setUint16(18 + i * 2, h, true));
    const header = {
      'b.bf16': { dtype: 'BF16', shape: [2], data_offsets: [18, 22] },
      __metadata__: { format: 'pt' },
      'a.f32': { dtype: 'F32', shape: [1, 3], data_offsets: [6, 18] },
      'c.f16': { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
    };
    const path = join(dir, 'hand.safetensors');
    await writeFile(path, buildFile(header, data));
    const f = await readSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.get('c.f16')!.data]).toEqual([1, -2, 0.5]);
    expect([...f.tensors.get('a.f32')!.data]).toEqual([3.25, -1, Math.fround(1e-3)]);
    expect(f.tensors.get('a.f32')!.shape).toEqual([1, 3]);
    expect([...f.tensors.get('b.bf16')!.data]).toEqual([1, -3]);
    expect(f.dtypes.get('b.bf16')).toBe('BF16');
    const h = await readSafetensorsHeader(path);
    expect(h.entries.map((e) => e.name)).toEqual(['c.f16', 'a.f32', 'b.bf16']);
  });
});

describe('readSafetensors errors', () => {
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);
  const cases: { name: string; bytes: () => Uint8Array; error: RegExp }[] = [
    { name: 'file shorter than the length prefix', bytes: () => new Uint8Array(5), error: /shorter than the 8-byte header length/ },
    { name: 'truncated data', bytes: () => buildFile(ok, eight).subarray(0, -3), error: /run past the end of the data.*truncated/ },
    { name: 'truncated header', bytes: () => buildFile(ok, eight).subarray(0, 20), error: /runs past the end .*truncated/ },
    { name: 'corrupted header length (huge)', bytes: () => buildFile(ok, eight, 0xffff_ffff_ffffn), error: /header length \d+ is not between/ },
    { name: 'header length too small', bytes: () => buildFile(ok, eight, 1n), error: /header length 1 is not between/ },
    { name: 'header not JSON', bytes: () => buildFile('{"t": nope}', eight), error: /not valid UTF-8 JSON/ },
    { name: 'header a JSON array', bytes: () => buildFile('[1, 2]', eight), error: /does not start with "\{"/ },
    {
      name: 'offsets out of bounds',
      bytes: () => buildFile({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight),
      error: /t data_offsets \[0, 16\) run past the end/,
    },
    {
      name: 'length not matching the shape',
      bytes: () => buildFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight),
      error: /spans bytes \[0, 8\) but needs 12 bytes/,
    },
    {
      name: 'overlapping tensors',
      bytes: () => buildFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight),
      error: /starts at byte 4 .*overlaps/,
    },
    { name: 'gap before a tensor', bytes: () => buildFile({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), error: /starts at byte 4 .*gap/ },
    {
      name: 'trailing bytes',
      bytes: () => buildFile({ t: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, eight),
      error: /cover 4 data bytes but the file holds 8/,
    },
    { name: 'unknown dtype', bytes: () => buildFile({ t: { dtype: 'F17', shape: [2], data_offsets: [0, 8] } }, eight), error: /unknown dtype "F17"/ },
    { name: 'unsupported dtype', bytes: () => buildFile({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, eight), error: /unsupported dtype I64/ },
    {
      name: 'negative dimension',
      bytes: () => buildFile({ t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, eight),
      error: /bad header entry for tensor t \(shape/,
    },
    { name: 'extra entry field', bytes: () => buildFile({ t: { ...ok.t, extra: 1 } }, eight), error: /bad header entry for tensor t/ },
    { name: 'non-string metadata', bytes: () => buildFile({ ...ok, __metadata__: { step: 3 } }, eight), error: /__metadata__ is not a string-to-string map/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const path = join(dir, `${c.name.replace(/\W+/g, '-')}.safetensors`);
      await writeFile(path, c.bytes());
      await expectCheckpointError(path, c.error);
    });
  }

  it('a missing file', async () => {
    await expectCheckpointError(join(dir, 'nope.safetensors'), /cannot open \(ENOENT\)/);
  });
});
