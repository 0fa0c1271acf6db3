/** Helpers for declaring ops: forward runs kernels, `record` registers the backward beside it. */
import { currentGraph } from '../graph.ts';
import type { BackwardFn, Var } from '../variable.ts';
import type { Tensor } from '../../kernels/tensor.ts';

export interface OpSpec {
  name: string;
  inputs: readonly Var[];
  outputs: readonly Tensor[];
  /** Input/output tensors the backward reads. */
  saved?: readonly Tensor[];
  /** Op-private tensors the backward reads (freed by the graph). */
  temps?: readonly Tensor[];
  backward: BackwardFn;
}

export function record(spec: OpSpec): Var[] {
  return currentGraph().record(spec.name, spec.inputs, spec.outputs, spec.saved ?? [], spec.backward, spec.temps ?? []);
}

export function record1(spec: OpSpec): Var {
  return record(spec)[0]!;
}

/** Register tensors that carry no gradient (indices, plans) so the graph frees them. */
export function constants(name: string, tensors: readonly Tensor[]): void {
  currentGraph().record(name, [], tensors, [], () => []);
}
