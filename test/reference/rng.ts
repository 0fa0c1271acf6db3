/**
 * Seeded random numbers for tests. Each test draws a fresh seed (printed on failure) unless
 * TEST_SEED is set, so reruns explore new inputs and any failure can be replayed exactly.
 */

export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32: small, fast, good enough for test data. */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Float64 array of n values, uniform in [lo, hi). */
  uniformArray(n: number, lo = -1, hi = 1): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
  normalArray(n: number, std = 1): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = this.normal() * std;
    return a;
  }
}

export function freshSeed(): number {
  const env = process.env.TEST_SEED;
  if (env) return Number(env) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}

/** Round values to float32, as they will be on the GPU; references then start from identical inputs. */
export function toF32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}
