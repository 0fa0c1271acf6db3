/**
 * Numeric gradient checks of the MLP ops (bench/mlp-ops.ts, the benchmark workload): relu, linear with a fused
 * ReLU epilogue, the MSE loss, and the whole benchmark MLP (linear+relu -> linear -> MSE).
 * GPU forward (f32) against a float64 reference, then the GPU backward against central finite
 * differences of it (test/reference/gradcheck.ts). Measured over 42 fresh seeds
 * (TEST_MEASURE=<file>, see ops.test.ts): worst forward error 1.5e-7, worst gradient error
 * 2.8e-7 of the largest entry (the whole MLP); the bounds are ~10x: 1.5e-6 and 3e-6.
 *
 * ReLU's kink: a finite difference straddling 0 is wrong by O(1), so the relu inputs are kept
 * at least 0.05 away from 0 (eps is 1e-6). Pre-activations of the fused layer are random
 * products; one landing within 1e-6 of 0 has probability ~1e-6 per element.
 */
import { describe, it, beforeAll } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { linear } from '../../src/autograd/ops/linear.ts';
import { linearRelu, mseLoss, relu } from '../../bench/mlp-ops.ts';
import { testRuntime } from '../reference/gpu.ts';
import { Rng, toF32, seeded } from '../reference/rng.ts';
import { gradcheck, rand, type GradcheckInput } from '../reference/gradcheck.ts';
import { matmulRef } from '../reference/matmul-ref.ts';

const RTOL = 3e-6;
const FWD_RTOL = 1.5e-6;
let rt: DawnRuntime;
beforeAll(async () => {
  rt = await testRuntime();
});

/** Uniform in ±[0.05, scale]: away from ReLU's kink. */
function randAwayFromZero(rng: Rng, shape: number[], scale = 1): GradcheckInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const mag = rng.uniformArray(n, 0.05, scale);
  const sign = rng.uniformArray(n, -1, 1);
  return { shape, data: toF32(Float64Array.from(mag, (m, i) => (sign[i]! < 0 ? -m : m))) };
}

function linearRef(x: Float64Array, w: Float64Array, b: Float64Array | null, M: number, N: number, K: number): Float64Array {
  const y = matmulRef(x, w, M, N, K, false, true);
  if (b) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) y[i * N + j]! += b[j]!;
  return y;
}

const reluRef = (x: Float64Array) => x.map((v) => Math.max(v, 0));

function mseRef(p: Float64Array, t: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += (p[i]! - t[i]!) ** 2;
  return s / p.length;
}

describe('MLP autograd ops: numeric gradient checks', () => {
  it('relu', async () => {
    const { seed, rng } = seeded();
    await gradcheck({
      rt,
      name: 'relu',
      seed,
      inputs: [randAwayFromZero(rng, [4, 9], 2)],
      gpu: ([x]) => relu(x!),
      reference: ([x]) => reluRef(x!),
      forwardRtol: FWD_RTOL,
      rtol: RTOL,
    });
  });

  for (const bias of [true, false]) {
    it(`linearRelu (fused epilogue, ${bias ? 'with' : 'without'} bias)`, async () => {
      const { seed, rng } = seeded();
      const [M, N, K] = [6, 5, 4];
      const inputs = [rand(rng, [M, K]), rand(rng, [N, K]), ...(bias ? [rand(rng, [N])] : [])];
      await gradcheck({
        rt,
        name: 'linearRelu',
        seed,
        inputs,
        gpu: ([x, w, b]) => linearRelu(x!, w!, b ?? null),
        reference: ([x, w, b]) => reluRef(linearRef(x!, w!, b ?? null, M, N, K)),
        forwardRtol: FWD_RTOL,
        rtol: RTOL,
      });
    });
  }

  it('mse loss', async () => {
    const { seed, rng } = seeded();
    const shape = [5, 7];
    const target = toF32(rng.uniformArray(35, -2, 2));
    const tT = rt.upload(Float32Array.from(target), shape);
    await gradcheck({
      rt,
      name: 'mse',
      seed,
      inputs: [rand(rng, shape, 2)],
      gpu: ([p]) => mseLoss(p!, tT),
      reference: ([p]) => Float64Array.of(mseRef(p!, target)),
      forwardRtol: FWD_RTOL,
      rtol: RTOL,
    });
    tT.dispose();
  });

  it('the benchmark MLP: linearRelu -> linear -> mse, every parameter', async () => {
    const { seed, rng } = seeded();
    const [B, D, H] = [6, 4, 8];
    const target = toF32(rng.uniformArray(B * D, -1, 1));
    const tT = rt.upload(Float32Array.from(target), [B, D]);
    await gradcheck({
      rt,
      name: 'mlp',
      seed,
      inputs: [rand(rng, [B, D]), rand(rng, [H, D]), rand(rng, [H], 0.5), rand(rng, [D, H]), rand(rng, [D], 0.5)],
      gpu: ([x, w1, b1, w2, b2]) => mseLoss(linear(linearRelu(x!, w1!, b1!), w2!, b2!), tT),
      reference: ([x, w1, b1, w2, b2]) => {
        const h = reluRef(linearRef(x!, w1!, b1!, B, H, D));
        return Float64Array.of(mseRef(linearRef(h, w2!, b2!, B, D, H), target));
      },
      forwardRtol: FWD_RTOL,
      rtol: RTOL,
    });
    tT.dispose();
  });

  it('relu composed with linear matches the fused op', async () => {
    const { seed, rng } = seeded();
    const [M, N, K] = [5, 6, 3];
    await gradcheck({
      rt,
      name: 'relu(linear)',
      seed,
      inputs: [rand(rng, [M, K]), rand(rng, [N, K]), rand(rng, [N])],
      gpu: ([x, w, b]) => relu(linear(x!, w!, b!)),
      reference: ([x, w, b]) => reluRef(linearRef(x!, w!, b!, M, N, K)),
      forwardRtol: FWD_RTOL,
      rtol: RTOL,
    });
  });
});
