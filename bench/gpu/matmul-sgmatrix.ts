/**
 * The tensor-core matmul (shaders/bench/matmul-sgmatrix.wgsl): f16 operands, f32 accumulation and
 * output, through Dawn's subgroup matrices. Feature-detected: only where the device enabled
 * chromium-experimental-subgroup-matrix and reports an f16 x f16 -> f32 shape. Not used by the
 * engine: the GPU check (bench/gpu/check.ts) verifies and times it first; lavapipe has none. Its
 * shader lives in shaders/bench/ (bench-only shaders; the bundle ships them with the GPU check).
 */
import type { Backend, Tensor } from '../../src/kernels/tensor.ts';
import type { DeviceCaps, SubgroupMatrixConfig } from '../../src/kernels/caps.ts';

/** The f16 -> f32 shape this device offers, or null. */
export function subgroupMatrixShape(caps: DeviceCaps): SubgroupMatrixConfig | null {
  return caps.subgroupMatrix.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32') ?? null;
}

/** C = A·B for row-major f16 A [M, K], B [K, N] with M, N, K multiples of the device's tile. */
export function subgroupMatrixMatmul(rt: Backend, a: Tensor, b: Tensor): Tensor {
  const shape = subgroupMatrixShape(rt.caps);
  if (!shape) throw new Error('subgroupMatrixMatmul: this device has no f16 subgroup-matrix configuration');
  if (a.dtype !== 'f16' || b.dtype !== 'f16' || a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0])
    throw new Error(`subgroupMatrixMatmul: ${a} · ${b} must be f16 [M, K] · [K, N]`);
  const [M, K] = a.shape as [number, number];
  const N = b.shape[1]!;
  if (M % shape.M || N % shape.N || K % shape.K)
    throw new Error(`subgroupMatrixMatmul: [${M}, ${K}] · [${K}, ${N}] is not a multiple of the ${shape.M}x${shape.N}x${shape.K} tile`);
  const sg = rt.caps.subgroups?.maxSize ?? 32;
  const out = rt.empty([M, N], 'f32', 'sgmatrix C');
  const k = rt.kernel({ shader: 'bench/matmul-sgmatrix', params: { SG: sg, TM: shape.M, TN: shape.N, TK: shape.K } });
  rt.dispatch(k, { A: a, B: b, C: out }, [N / shape.N, M / shape.M], { M, N, K });
  return out;
}
