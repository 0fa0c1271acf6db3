/**
 * Explicit, configurable initialisation per parameter group (docs/MODEL.md "Initialisation" lists the
 * defaults). Drawn on the host from a seeded RNG in a fixed parameter order, so a seed gives the
 * same model on every machine.
 */
import type { Backend } from '../kernels/tensor.ts';
import type { Rng } from '../util/rng.ts';
import { Parameter, type ParameterOptions } from './parameter.ts';
import { numel, type DType } from '../kernels/tensor.ts';

export type InitRule = { kind: 'normal'; std: number } | { kind: 'constant'; value: number };

/**
 * A parameter drawn from `rule`. The values are drawn only by a runtime that holds them: the meta
 * runtime (memory planning) never builds the host array, so planning 2.4B parameters costs no RAM.
 */
export interface StorageOptions {
  /** Storage of the GPU copy (default f32). */
  dtype?: DType;
  /** Keep the f32 drawn values on the host (the offloaded optimizer's master weights). */
  keepHost?: boolean;
}

export function makeParameter(
  rt: Backend,
  rng: Rng,
  name: string,
  shape: number[],
  rule: InitRule,
  opts: ParameterOptions,
  storage: StorageOptions = {},
): Parameter {
  const draw = () => {
    const n = numel(shape);
    const data = new Float32Array(n);
    if (rule.kind === 'normal') for (let i = 0; i < n; i++) data[i] = rng.normal() * rule.std;
    else data.fill(rule.value);
    return data;
  };
  let kept: Float32Array | null = null;
  const values = () => {
    const d = draw();
    if (storage.keepHost) kept = d;
    return d;
  };
  const p = new Parameter(rt.upload(values, shape, storage.dtype ?? 'f32', name), name, opts);
  if (kept) p.keepHostMaster(kept);
  return p;
}
