/**
 * `model.init.from`: fine-tune from trained weights. The folder is resolved and its config compared
 * with the training config's model before the device is opened, one line per mismatch with the
 * setting that fixes it; the weights are loaded into the freshly built model afterwards. A
 * classifier (model.task "classify") may start from a forecaster: the backbone loads, the head is
 * new. LoRA adapters of the model being trained are not in the source and keep their init.
 */
import type { WeightStores } from '../persist/stores.ts';
import type { ModelConfig } from '../../model/config.ts';
import type { TimeMoeModel } from '../../model/time-moe.ts';
import { ConfigError } from '../config.ts';
import { HfConfigError, compareWithHf } from './hf-config.ts';
import { describeSource, loadSourceWeights, readSourceTensors, resolveModelSource, sourceRoot, type ModelSource } from './model-source.ts';
import { realPath, relation, shown } from '../../util/output-path.ts';

/** Our checkpoint's model against the training config's (same keys as compareWithHf). */
function compareModels(ours: ModelConfig, theirs: ModelConfig, ignore: readonly (keyof ModelConfig)[]): string[] {
  const keys = [
    'hidden',
    'layers',
    'heads',
    'experts',
    'topK',
    'moeIntermediate',
    'sharedIntermediate',
    'horizons',
    'ropeTheta',
    'rmsEps',
    'normTopkProb',
    'capacityFactor',
    'task',
    'numClasses',
  ] as const;
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

/**
 * Resolve and check `model.init.from`. With `runDir` (the run's logging.dir), the source must lie
 * apart from it: a run folder that is the source's run, inside it or holding it would move aside,
 * prune or mix files with the checkpoint it starts from (docs/RELIABILITY.md, "Output paths").
 */
export async function prepareInitFrom(model: ModelConfig, from: string, cwd: string, runDir?: string): Promise<InitSource> {
  let source: ModelSource;
  try {
    source = await resolveModelSource(from, cwd);
  } catch (e) {
    // train.js reports config problems as ConfigError (exit 2).
    if (e instanceof HfConfigError) throw new ConfigError(`model.init.from: ${e.message}`);
    throw e;
  }
  if (runDir !== undefined) {
    const root = sourceRoot(source);
    const r = relation(realPath(runDir, 'create the run folder'), realPath(root.path, 'read'));
    if (r) {
      const run = shown(runDir, cwd);
      const src = shown(root.path, cwd);
      const how =
        r === 'same'
          ? `is ${root.what.replace(' being read', '')} model.init.from reads`
          : r === 'inside'
            ? `is inside ${src}, ${root.what.replace(' being read', '')} model.init.from reads`
            : `holds ${src}, ${root.what.replace(' being read', '')} model.init.from reads`;
      throw new ConfigError(
        `logging.dir ${run} ${how} (model.init.from ${from}${root.path !== source.dir ? `: ${shown(source.dir, cwd)}` : ''}). A run there would move aside, prune or mix its files with the weights it starts from. ` +
          `Train into another folder (e.g. --set logging.dir=${shown(`${realPath(root.path, 'read')}-finetune`, cwd)}), or copy the checkpoint out of the run first`,
      );
    }
  }
  // A classifier on another model's backbone: the heads differ by design and start from their init.
  const sameHead = source.model.task === model.task && JSON.stringify(source.model.numClasses) === JSON.stringify(model.numClasses);
  const backboneOnly = model.task === 'classify' && !sameHead;
  const ignore = backboneOnly ? (['horizons', 'task', 'numClasses'] as const) : [];
  const problems = source.kind === 'hf' ? compareWithHf(model, source.hf, ignore) : compareModels(model, source.model, ignore);
  if (problems.length) {
    throw new ConfigError(
      `model.init.from ${source.dir}: its config does not describe the model being trained (${problems.length} difference${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`,
    );
  }
  // The weights, verified (checksum, finite values), before the data and the device.
  const { tensors } = await readSourceTensors(source);
  return {
    source,
    async load(m, weights) {
      await loadSourceWeights(source, m.params, weights, { backboneOnly, tensors });
      const what = [
        backboneOnly ? `the backbone (the ${model.numClasses}-class head starts from its init)` : '',
        m.adapters.length ? `LoRA adapters start at B = 0` : '',
      ]
        .filter(Boolean)
        .join('; ');
      return `[init] weights from ${describeSource(source)}${what ? `: ${what}` : ''}`;
    },
  };
}
