/**
 * CPU time to record one small-moe optimizer step (Trainer.record: every dispatch, one submit),
 * with the bind-group cache on, and with it emptied before every step (every group rebuilt).
 * Run: node --import tsx bench/record-time.ts
 */
import { join } from 'node:path';
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { loadConfig } from '../src/train/config-file.ts';
import { TimeMoeModel } from '../src/model/time-moe.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { Trainer } from '../src/train/step/trainer.ts';
import { loadData } from '../src/train/data/index.ts';

const rt = await getRuntime({ announce: false });
const cfg = loadConfig(join(import.meta.dirname, '..', 'small-moe.json'));
const data = await loadData(cfg.data, { cwd: process.cwd(), seed: cfg.seed });
const model = new TimeMoeModel(rt, cfg.model, cfg.seed);
const trainer = new Trainer(rt, model, new AdamW(model.params, cfg.optim), cfg);
const batch = data.train.nextBatch(cfg.schedule.microBatch);
for (let i = 1; i <= 3; i++) await trainer.resolve(trainer.record(i, [batch]));
for (const cached of [true, false, true, false]) {
  const ms: number[] = [];
  for (let i = 0; i < 10; i++) {
    if (!cached) rt.recorder.bindGroups.forget();
    const t0 = performance.now();
    const p = trainer.record(100 + i, [batch]);
    ms.push(performance.now() - t0);
    await trainer.resolve(p);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `bind groups ${cached ? 'cached ' : 'rebuilt'}: record ${ms[0]!.toFixed(2)} ms best, ${ms[5]!.toFixed(2)} ms median (${rt.recorder.dispatches} dispatches so far)`,
  );
}
