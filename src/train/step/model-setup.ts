/**
 * The model and optimizer of a run, in either optim.offload mode, with what checkpoints read and
 * load: one construction for training (run/prepare.ts) and planning (plan/simulate.ts), so the plan
 * holds exactly the buffers the run holds.
 *   none  f32 weights, gradients and AdamW moments on the GPU;
 *   host  working weights (f16 with f16 activations, else f32) and gradients on the GPU; f32 master
 *         weights and moments in host memory (src/optim/host-adamw.ts).
 * optim.freeze and optim.lora decide what trains (src/model/freeze.ts): the optimizer's moments and
 * the checkpoint's optimizer.safetensors cover the trainable parameters only, in both modes.
 */
import type { Backend } from '../../kernels/tensor.ts';
import { TimeMoeModel } from '../../model/time-moe.ts';
import type { Parameter } from '../../model/parameter.ts';
import { AdamW } from '../../optim/adamw.ts';
import { HostAdamW, type UpdateWorkers } from '../../optim/host-adamw.ts';
import type { StepOptimizer } from '../../optim/step-optimizer.ts';
import { applyFreeze } from '../../model/freeze.ts';
import type { TrainConfig } from '../config.ts';
import { hostStore, type OptimizerSlot, type StoreSlot, type WeightStores } from '../persist/stores.ts';

export interface RunModel {
  model: TimeMoeModel;
  /** The GPU AdamW (offload none) or the host one (offload host), seen through what the step and the planner use. */
  optimizer: StepOptimizer;
  /** The parameters that train (all of them unless optim.freeze or optim.lora say otherwise). */
  trainable: Parameter[];
  /** Where checkpoints read and load the weights (undefined: the GPU tensors). */
  weights: WeightStores | undefined;
  /** The optimizer's moments for checkpoints. */
  slots(): (OptimizerSlot | StoreSlot)[];
  dispose(): void;
}

/** `hostWorkers`: the platform's threads for the host AdamW (Node: src/optim/node/update-workers.ts); none updates on the calling thread. */
export function buildRunModel(rt: Backend, cfg: TrainConfig, opts: { hostWorkers?: UpdateWorkers } = {}): RunModel {
  if (cfg.optim.offload === 'none') {
    const model = new TimeMoeModel(rt, cfg.model, cfg.seed, {}, cfg.optim.lora ?? null);
    const trainable = applyFreeze(
      model.params,
      cfg.optim.freeze,
      model.adapters.map((a) => a.base),
    );
    const optimizer = new AdamW(trainable, cfg.optim);
    return {
      model,
      optimizer,
      trainable,
      weights: undefined,
      slots: () => optimizer.entries(),
      dispose: () => {
        optimizer.dispose();
        model.dispose();
      },
    };
  }
  const model = new TimeMoeModel(rt, cfg.model, cfg.seed, { working: cfg.precision.activations, keepHost: true }, cfg.optim.lora ?? null);
  const trainable = applyFreeze(
    model.params,
    cfg.optim.freeze,
    model.adapters.map((a) => a.base),
  );
  // Every parameter keeps its f32 master here (checkpoints read the weights from it); frozen ones
  // get no gradient, so HostAdamW.apply never updates them.
  const optimizer = new HostAdamW(rt, model.params, cfg.optim, opts.hostWorkers ? { workers: opts.hostWorkers } : {});
  // A checkpoint reads the f32 master; loading one writes the master and then the working copy.
  const pushAfterLoad = (p: Parameter) => () => optimizer.pushWeight(p);
  return {
    model,
    optimizer,
    trainable,
    weights: (p) => hostStore(optimizer.stateOf(p).master, pushAfterLoad(p)),
    slots: () => trainable.map((p) => ({ name: p.name, m: hostStore(optimizer.stateOf(p).m), v: hostStore(optimizer.stateOf(p).v) })),
    dispose: () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}
