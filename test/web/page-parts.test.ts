/**
 * The browser page's pieces that Node can check without a browser, each against what train.js
 * does with the same input: the config (small-moe.json with --set lines), a CSV's series (the
 * dropped file vs loadCsv on disk), and the weights download (the bytes writeSafetensors writes
 * for a checkpoint's model.safetensors).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/train/config-file.ts';
import { loadCsv } from '../../src/train/data/csv.ts';
import { safetensorsParts } from '../../src/train/persist/safetensors-bytes.ts';
import { writeSafetensors } from '../../src/train/persist/safetensors.ts';
import { pageConfig } from '../../src/web/config.ts';
import { csvSeries } from '../../src/web/data.ts';
import { Rng, freshSeed } from '../reference/rng.ts';
import { REPO } from '../ui/helpers.ts';

describe('the page, against train.js', () => {
  it("trains small-moe.json with the --set lines as train.js does, and refuses what train.js refuses, with train.js's message", () => {
    const sets = ['schedule.steps=3', 'schedule.warmupSteps=1', 'optim.lr=0.002'];
    expect(pageConfig(sets)).toEqual(loadConfig(join(REPO, 'small-moe.json'), sets));
    expect(() => pageConfig(['schedule.steps=3'])).toThrow(/schedule\.warmupSteps: 30 exceeds schedule\.steps 3/);
  });

  it('reads a dropped CSV into the series train.js reads from the same file (values, ids, the column note)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wmoe-web-csv-'));
    const rows = [
      'date,mote,temp',
      ...Array.from(
        { length: 300 },
        (_, i) => `2024-01-01T00:${String(i % 60).padStart(2, '0')}:00Z,${i % 2},${i % 17 === 0 ? 'NaN' : (20 + Math.sin(i)).toFixed(3)}`,
      ),
    ];
    const file = join(dir, 'motes.csv');
    writeFileSync(file, rows.join('\n'));
    for (const column of [undefined, 'temp']) {
      const notes: string[] = [];
      const want = await loadCsv({ kind: 'csv', path: file, header: true, delimiter: ',', ...(column ? { column } : {}) }, dir, { notes });
      const got = csvSeries(readFileSync(file, 'utf8'), 'motes.csv', column);
      expect(got.series.map((s) => s.id)).toEqual(want.map((s) => s.id));
      got.series.forEach((s, i) => expect(s.values).toEqual(want[i]!.values));
      expect(got.note).toBe(notes.join('; '));
    }
  });

  it("encodes the weights download byte for byte as writeSafetensors writes a checkpoint's model.safetensors", async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    // Names that sort differently from insertion order, a stacked expert slice, odd sizes.
    const tensors = new Map(
      [
        ['model.layers.1.self_attn.q_proj.weight', [7, 5]],
        ['lm_heads.0.out_layer.weight', [1, 7]],
        ['model.layers.0.ffn_layer.experts.3.down_proj.weight', [3, 2, 1]],
        ['model.norm.weight', [7]],
      ].map(([name, shape]) => {
        const n = (shape as number[]).reduce((a, b) => a * b, 1);
        return [name as string, { shape: shape as number[], data: Float32Array.from({ length: n }, () => rng.uniform() - 0.5) }];
      }),
    );
    const meta = { format: 'pt', producer: 'webgpu-moe', content: 'weights' };
    const file = join(mkdtempSync(join(tmpdir(), 'wmoe-web-st-')), 'model.safetensors');
    await writeSafetensors(file, tensors, meta, { fsync: false });
    const parts = safetensorsParts(tensors, meta);
    expect(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))).equals(readFileSync(file)), `seed ${seed}`).toBe(true);
    expect(() => safetensorsParts(new Map([['x', { shape: [2, 2], data: new Float32Array(3) }]]))).toThrow(/tensor x has 3 values for shape \[2, 2\]/);
  });
});
