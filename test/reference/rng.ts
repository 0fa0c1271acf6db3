/**
 * Seeded random numbers for tests. Each test draws a fresh seed (printed on failure) unless
 * TEST_SEED is set, so reruns explore new inputs and any failure can be replayed exactly.
 */
import { Rng } from '../../src/util/rng.ts';

export { Rng };

export function freshSeed(): number {
  const env = process.env.TEST_SEED;
  if (env) return Number(env) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}

/** Round values to float32, as they will be on the GPU; references then start from identical inputs. */
export function toF32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}

/** A fresh seed (see freshSeed) and a generator drawing from it: the seed goes into failure messages. */
export function seeded(): { seed: number; rng: Rng } {
  const seed = freshSeed();
  return { seed, rng: new Rng(seed) };
}
