/** Float64 references of fill (src/kernels/fill.ts): what a tensor holds after a fill, f16 rounding included. */

/** `value` rounded to the nearest IEEE half (ties to even), overflowing to ±Infinity. */
export function roundF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity; // at or past 65504 + half an ulp
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (e > -14 && 2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (e - 10); // subnormals share the exponent -14 grid
  const q = a / ulp;
  const f = Math.floor(q);
  const r = q - f;
  return Math.sign(x) * (r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f) * ulp;
}

/** The `n` values a tensor of `dtype` holds after fill(t, value). */
export function fillRef(n: number, value: number, dtype: 'f32' | 'f16' | 'i32' | 'u32'): Float64Array {
  const v = dtype === 'f32' ? Math.fround(value) : dtype === 'f16' ? roundF16(Math.fround(value)) : dtype === 'i32' ? value | 0 : value >>> 0;
  return new Float64Array(n).fill(v);
}

/** The words a u32 tensor of `n` elements holds after fillBits(t, bits). */
export function fillBitsRef(n: number, bits: number): Uint32Array {
  return new Uint32Array(n).fill(bits >>> 0);
}
