/**
 * Where a run's state lives for checkpoints and imports: a GPU tensor or a host array, behind one
 * interface (checkpoint.ts reads and loads through it). Platform-free: the model setup
 * (src/train/step/model-setup.ts) uses it in the browser too.
 */
import type { Tensor } from '../../kernels/tensor.ts';
import type { Parameter } from '../../model/parameter.ts';

/**
 * Where a checkpoint reads values from and loads them into: a GPU tensor, or host memory (the
 * offloaded optimizer's master weights and moments). The file format is the same either way, so a
 * run can resume across optim.offload modes.
 */
export interface StateStore {
  readonly size: number;
  readF32(): Promise<Float32Array>;
  load(data: Float32Array): void;
}

/** A GPU tensor as a store. */
export function tensorStore(t: Tensor): StateStore {
  return { size: t.size, readF32: () => t.readF32(), load: (d) => t.rt.write(t, d) };
}

/** A host array as a store (`onLoad` runs after it was overwritten). */
export function hostStore(a: Float32Array, onLoad?: () => void): StateStore {
  return {
    size: a.length,
    readF32: () => Promise.resolve(a),
    load: (d) => {
      a.set(d);
      onLoad?.();
    },
  };
}

/** AdamW moments of one parameter, keyed by Parameter.name (stacked experts keep their `{j}` slot). */
export interface OptimizerSlot {
  name: string;
  /** exp_avg, same element count as the parameter. */
  m: Tensor;
  /** exp_avg_sq, same element count as the parameter. */
  v: Tensor;
}
/** The same, in stores (the offloaded optimizer's host moments). */
export interface StoreSlot {
  name: string;
  m: StateStore;
  v: StateStore;
}
/** Where each parameter's weights are read from and loaded into (default: its GPU tensor). */
export type WeightStores = (p: Parameter) => StateStore;
