/** A Trainer over a config's data, model and AdamW, as runTraining builds them (for trainer tests). */
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import type { TrainConfig } from '../../src/train/config.ts';
import { TimeMoeModel } from '../../src/model/time-moe.ts';
import { AdamW } from '../../src/optim/adamw.ts';
import { Trainer } from '../../src/train/step/trainer.ts';
import { loadData } from '../../src/train/data/index.ts';

export async function setupTrainer(rt: DawnRuntime, cfg: TrainConfig) {
  const data = await loadData(cfg.data, { cwd: process.cwd(), seed: cfg.seed });
  const model = new TimeMoeModel(rt, cfg.model, cfg.seed);
  const opt = new AdamW(model.params, cfg.optim);
  const trainer = new Trainer(rt, model, opt, cfg);
  const dispose = () => {
    trainer.dispose();
    opt.dispose();
    model.dispose();
  };
  return { data, model, opt, trainer, dispose };
}
