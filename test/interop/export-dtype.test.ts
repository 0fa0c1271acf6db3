/**
 * export.js --dtype bf16 | f16 (issue 26): the folder's model.safetensors holds every weight of the
 * f32 export rounded to the nearest bf16 / f16 value, config.json says so (torch_dtype), the import
 * path widens it back, and forecast.js from it forecasts what the f32 export forecasts, within the
 * precision of the dtype.
 *
 * Tolerances, stated: a weight may move by at most half a unit in the last place of its dtype
 * (round to nearest: 2^-9 relative for bf16's 8-bit significand, 2^-11 for f16's 11-bit one;
 * subnormal f16 by half of 2^-24). The forecasts (9 points, three autoregressive passes of the fixture
 * model) move with the weights: measured 5.4e-3 (bf16) and 8e-4 (f16) of the window scale; we allow
 * 1.5e-2 and 2.5e-3 of it (~3x), while reading the file in the wrong dtype or a wrong rounding
 * moves them by whole units.
 */
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSafetensors } from '../../src/train/persist/safetensors.ts';
import { scratch } from '../train/cli-helpers.ts';
import { node } from '../support/spawn.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIX = join(ROOT, 'test', 'fixtures', 'hf');
const exportCheck = JSON.parse(readFileSync(join(FIX, 'export-check.json'), 'utf8')) as { forecast: number[]; forecast_scale: number };
const { context_length: T, horizon: H } = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as { context_length: number; horizon: number };

function forecastColumn(csvPath: string): number[] {
  const [head, ...lines] = readFileSync(csvPath, 'utf8').trim().split('\n');
  const col = head!.split(',').indexOf('forecast');
  return lines.map((l) => Number(l.split(',')[col]));
}

/** Half a unit in the last place of `w` in a float format with `bits` significand bits (and `minExp`, the smallest normal exponent). */
function halfUlp(w: number, bits: number, minExp: number): number {
  const e = w === 0 ? minExp : Math.max(minExp, Math.floor(Math.log2(Math.abs(w))));
  return 2 ** (e - (bits - 1)) / 2;
}

const CASES = [
  { dtype: 'bf16', st: 'BF16', torch: 'bfloat16', bits: 8, minExp: -126, bytes: 2, forecastTol: 1.5e-2 },
  { dtype: 'f16', st: 'F16', torch: 'float16', bits: 11, minExp: -14, bytes: 2, forecastTol: 2.5e-3 },
] as const;

describe('export.js --dtype', () => {
  for (const c of CASES) {
    it(`${c.dtype}: weights rounded to nearest, torch_dtype ${c.torch}, forecast within ${c.forecastTol} x the window scale of the f32 export's`, async () => {
      const d = scratch();
      cpSync(FIX, d, { recursive: true });
      const ref = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'f32'], d);
      expect(ref.status, ref.stderr).toBe(0);
      const r = await node('export.js', ['--checkpoint', 'finetuned', '--out', c.dtype, '--dtype', c.dtype], d);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`58 tensors, 7,168 parameters, ${c.st}, `));
      expect((JSON.parse(readFileSync(join(d, c.dtype, 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype).toBe(c.torch);

      const full = await readSafetensors(join(d, 'f32', 'model.safetensors'));
      const half = await readSafetensors(join(d, c.dtype, 'model.safetensors'));
      expect([...half.dtypes.values()].every((x) => x === c.st)).toBe(true);
      const file = readFileSync(join(d, c.dtype, 'model.safetensors'));
      expect(file.length - 8 - Number(file.readBigUInt64LE(0)), 'data bytes').toBe(7168 * c.bytes);
      let worst = 0;
      let moved = 0;
      for (const [name, t] of full.tensors) {
        const h = half.tensors.get(name)!;
        expect(h.shape).toEqual(t.shape);
        for (let i = 0; i < t.data.length; i++) {
          const w = t.data[i]!;
          const err = Math.abs(h.data[i]! - w);
          if (err > 0) moved++;
          worst = Math.max(worst, err / halfUlp(w, c.bits, c.minExp));
        }
      }
      expect(worst, 'largest rounding error, in half-ulps').toBeLessThanOrEqual(1);
      expect(moved, 'weights changed by the rounding').toBeGreaterThan(1000);

      const f = await node(
        'forecast.js',
        ['--checkpoint', c.dtype, '--data', 'series.csv', '--context', String(T), '--horizon', String(H), '--out', `fc-${c.dtype}`],
        d,
      );
      expect(f.status, f.stderr).toBe(0);
      const got = forecastColumn(join(d, `fc-${c.dtype}`, 'forecasts.csv'));
      expect(got.length).toBe(exportCheck.forecast.length);
      const diff = Math.max(...got.map((v, i) => Math.abs(v - exportCheck.forecast[i]!)));
      expect(diff, 'max |forecast - f32 export forecast|').toBeLessThanOrEqual(c.forecastTol * exportCheck.forecast_scale);
    });
  }

  it('f16 refuses weights beyond its range (they would be written as infinity); an unknown dtype is a flag error', async () => {
    const d = scratch();
    cpSync(FIX, d, { recursive: true });
    let r = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'x', '--dtype', 'fp8'], d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/option '--dtype <dtype>' argument 'fp8' is invalid\. expected one of f32, bf16, f16, got "fp8"/);
    // A finite weight of 1e5 (state.json's checksum updated: the checkpoint is valid, just big).
    const st = join(d, 'finetuned', 'model.safetensors');
    const bytes = readFileSync(st);
    const n = Number(bytes.readBigUInt64LE(0));
    bytes.writeFloatLE(1e5, 8 + n);
    const state = JSON.parse(readFileSync(join(d, 'finetuned', 'state.json'), 'utf8')) as { files: { model: { sha256: string } } };
    state.files.model.sha256 = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(st, bytes);
    writeFileSync(join(d, 'finetuned', 'state.json'), JSON.stringify(state));
    r = await node('export.js', ['--checkpoint', 'finetuned', '--out', 'x', '--dtype', 'f16'], d);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /holds 100000 \(index 0\), beyond f16's range \(±65504\): it would be written as infinity\. Export with --dtype bf16 \(same range as f32\) or --dtype f32/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await node('export.js', ['--checkpoint', 'finetuned', '--out', 'x', '--dtype', 'bf16'], d)).status).toBe(0);
  });
});
