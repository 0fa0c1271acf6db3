/**
 * Numeric gradient check for autograd ops: first the GPU forward (f32) against the op's float64
 * CPU reference (a wrong forward with a right backward, e.g. a loss summed where it should be
 * averaged, fails here), then the GPU backward against central finite differences of that
 * reference. The scalar differentiated is L = Σ R ∘ f(inputs) for a random projection R, so
 * every output element contributes with a distinct weight.
 */
import { Graph } from '../../src/autograd/graph.ts';
import { Var } from '../../src/autograd/variable.ts';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { Rng, toF32 } from './rng.ts';
import { expectClose } from './compare.ts';
import { projectedNumericGrad } from './ops.ts';

export interface GradcheckInput {
  shape: number[];
  data: Float64Array;
  /** Integer inputs (indices) are passed through and not differentiated. */
  requiresGrad?: boolean;
  dtype?: 'f32' | 'i32' | 'u32';
}

/** A gradcheck input of `shape`, uniform in [-scale, scale] (f32-representable). */
export function rand(rng: Rng, shape: number[], scale = 1): GradcheckInput {
  return {
    shape,
    data: toF32(
      rng.uniformArray(
        shape.reduce((a, b) => a * b, 1),
        -scale,
        scale,
      ),
    ),
  };
}

export interface GradcheckCase {
  rt: DawnRuntime;
  name: string;
  seed: number;
  inputs: GradcheckInput[];
  /** Builds the op on GPU Vars; returns the output Var to check. */
  gpu: (inputs: Var[]) => Var;
  /** float64 reference of the same function. */
  reference: (inputs: Float64Array[]) => Float64Array;
  /** Finite-difference step (default 1e-6: exact enough in float64). */
  eps?: number;
  /** Tolerance on the GPU forward output, relative to its largest magnitude (state the measurement next to it). */
  forwardRtol: number;
  /** Tolerance on the GPU gradient, relative to the largest gradient magnitude. */
  rtol: number;
  /**
   * Absolute floor added to that scale (default 1e-6): a gradient that is exactly zero in exact
   * arithmetic (e.g. a balancing loss whose per-expert coefficients are all equal) comes back from
   * f32 as cancellation noise of ~1e-9; relative to a zero maximum that noise would fail.
   */
  atol?: number;
}

export async function gradcheck(c: GradcheckCase): Promise<void> {
  const { rt } = c;
  const rng = new Rng(c.seed ^ 0x5bd1e995);
  const graph = new Graph(true);
  const leaves = c.inputs.map((inp, i) => {
    const t = rt.upload(inp.dtype && inp.dtype !== 'f32' ? Int32Array.from(inp.data) : Float32Array.from(inp.data), inp.shape, inp.dtype ?? 'f32', `input${i}`);
    return new Var(t, inp.requiresGrad ?? (inp.dtype ?? 'f32') === 'f32', `input${i}`);
  });
  const refOut = c.reference(c.inputs.map((x) => x.data));
  const R = Float64Array.from(rng.uniformArray(refOut.length, -1, 1));
  try {
    const out = graph.run(() => c.gpu(leaves));
    if (out.data.size !== refOut.length) throw new Error(`${c.name}: GPU output has ${out.data.size} elements, reference ${refOut.length}`);
    // The output is read before the backward: a backward that wrote into it would not hide a wrong forward.
    const gpuOut = await out.data.readF32();
    expectClose(gpuOut, refOut, { rtol: c.forwardRtol, relativeToMax: true, what: `${c.name}: forward`, seed: c.seed });
    const seedT = rt.upload(Float32Array.from(R), [...out.shape]);
    graph.backward(out, seedT);

    const eps = c.eps ?? 1e-6;
    for (let i = 0; i < leaves.length; i++) {
      const leaf = leaves[i]!;
      if (!leaf.requiresGrad) continue;
      if (!leaf.grad) throw new Error(`${c.name}: input ${i} received no gradient`);
      const gpuGrad = await leaf.grad.readF32();
      const others = c.inputs.map((inp) => inp.data);
      const fd = projectedNumericGrad((xi) => c.reference(others.map((x, k) => (k === i ? xi : x))), others[i]!, R, eps);
      expectClose(gpuGrad, fd, { rtol: c.rtol, atol: c.atol ?? 1e-6, relativeToMax: true, what: `${c.name}: d/d input${i}`, seed: c.seed });
    }
    seedT.dispose();
  } finally {
    graph.dispose();
    for (const l of leaves) l.dispose();
  }
}
