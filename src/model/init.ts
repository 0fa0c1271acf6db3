/**
 * Explicit, configurable initialisation per parameter group (README "Initialisation" lists the
 * defaults). Drawn on the host from a seeded RNG in a fixed parameter order, so a seed gives the
 * same model on every machine.
 */
import type { Backend } from '../kernels/tensor.ts';
import type { Rng } from '../util/rng.ts';
import { Parameter, type ParameterOptions } from './parameter.ts';
import { numel } from '../kernels/tensor.ts';

export type InitRule = { kind: 'normal'; std: number } | { kind: 'constant'; value: number };

/**
 * A parameter drawn from `rule`. The values are drawn only by a runtime that holds them: the meta
 * runtime (memory planning) never builds the host array, so planning 2.4B parameters costs no RAM.
 */
export function makeParameter(rt: Backend, rng: Rng, name: string, shape: number[], rule: InitRule, opts: ParameterOptions): Parameter {
  const draw = () => {
    const n = numel(shape);
    const data = new Float32Array(n);
    if (rule.kind === 'normal') for (let i = 0; i < n; i++) data[i] = rng.normal() * rule.std;
    else data.fill(rule.value);
    return data;
  };
  return new Parameter(rt.upload(draw, shape, 'f32', name), name, opts);
}
