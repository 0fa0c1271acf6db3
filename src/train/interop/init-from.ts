/**
 * `model.init.from`: fine-tune from trained weights. The folder is resolved and its config compared
 * with the training config's model before the device is opened, one line per mismatch with the
 * setting that fixes it; the weights are loaded into the freshly built model afterwards. A
 * classifier (model.task "classify") may start from a forecaster: the backbone loads, the head is
 * new. LoRA adapters of the model being trained are not in the source and keep their init.
 */
import type { WeightStores } from '../persist/checkpoint.ts';
import type { ModelConfig } from '../../model/config.ts';
import type { TimeMoeModel } from '../../model/time-moe.ts';
import { ConfigError } from '../config.ts';
import { HfConfigError, compareWithHf } from './hf-config.ts';
import { describeSource, loadSourceWeights, resolveModelSource, type ModelSource } from './model-source.ts';

/** Our checkpoint's model against the training config's (same keys as compareWithHf). */
function compareModels(ours: ModelConfig, theirs: ModelConfig, ignore: readonly (keyof ModelConfig)[]): string[] {
  const keys = ['hidden', 'layers', 'heads', 'experts', 'topK', 'moeIntermediate', 'sharedIntermediate', 'horizons', 'ropeTheta', 'rmsEps', 'normTopkProb', 'capacityFactor', 'task', 'numClasses'] as const;
  const out: string[] = [];
  for (const k of keys) {
    if (ignore.includes(k)) continue;
    const a = JSON.stringify(ours[k]);
    const b = JSON.stringify(theirs[k]);
    if (a !== b) out.push(`model.${k} is ${a ?? 'unset'} but the checkpoint was trained with ${b ?? 'unset'}: set model.${k} to ${b ?? 'unset'}`);
  }
  return out;
}

export interface InitSource {
  source: ModelSource;
  /** Write the weights into the model (validated first; a bad file leaves it untouched). */
  load(model: TimeMoeModel, weights?: WeightStores): Promise<string>;
}

export async function prepareInitFrom(model: ModelConfig, from: string, cwd: string): Promise<InitSource> {
  let source: ModelSource;
  try {
    source = await resolveModelSource(from, cwd);
  } catch (e) {
    // train.js reports config problems as ConfigError (exit 2).
    if (e instanceof HfConfigError) throw new ConfigError(`model.init.from: ${e.message}`);
    throw e;
  }
  // A classifier on another model's backbone: the heads differ by design and start from their init.
  const sameHead = source.model.task === model.task && JSON.stringify(source.model.numClasses) === JSON.stringify(model.numClasses);
  const backboneOnly = model.task === 'classify' && !sameHead;
  const ignore = backboneOnly ? (['horizons', 'task', 'numClasses'] as const) : [];
  const problems = source.kind === 'hf' ? compareWithHf(model, source.hf, ignore) : compareModels(model, source.model, ignore);
  if (problems.length) {
    throw new ConfigError(`model.init.from ${source.dir}: its config does not describe the model being trained (${problems.length} difference${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`);
  }
  return {
    source,
    async load(m, weights) {
      await loadSourceWeights(source, m.params, weights, { backboneOnly });
      const what = [backboneOnly ? `the backbone (the ${model.numClasses}-class head starts from its init)` : '', m.adapters.length ? `LoRA adapters start at B = 0` : ''].filter(Boolean).join('; ');
      return `[init] weights from ${describeSource(source)}${what ? `: ${what}` : ''}`;
    },
  };
}
