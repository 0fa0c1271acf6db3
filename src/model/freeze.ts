/**
 * Fine-tuning: which parameters train. optim.freeze names parameter groups (Parameter.group, from
 * the Hugging Face names: model.embed_layer.* = embedding, self_attn.* = attention, *layernorm /
 * model.norm = norm, ffn_layer.gate = router, ffn_layer.experts.* = experts, shared_expert* =
 * shared_expert, lm_heads.* / classifier.* = head), or 'backbone' for all of them but head. A
 * frozen parameter does not require a gradient: backward skips its weight gradient, the
 * optimizer holds no moments for it and never writes it. With optim.lora, each adapted weight is
 * frozen too (its change lives in the adapter); its bias follows its group.
 */
import { z } from 'zod';
import type { Parameter, ParamGroup } from './parameter.ts';
import type { LoraConfig } from './lora.ts';

export const MODEL_GROUPS = ['embedding', 'attention', 'norm', 'router', 'experts', 'shared_expert', 'head'] as const satisfies readonly ParamGroup[];
export const FreezeGroupSchema = z.enum([...MODEL_GROUPS, 'backbone']);
export type FreezeGroup = z.output<typeof FreezeGroupSchema>;

export function frozenGroups(freeze: readonly FreezeGroup[]): Set<ParamGroup> {
  return new Set(freeze.flatMap((g) => (g === 'backbone' ? MODEL_GROUPS.filter((x) => x !== 'head') : [g])));
}

/** Mark the frozen parameters (requiresGrad false); returns the trainable ones, in order. */
export function applyFreeze(params: readonly Parameter[], freeze: readonly FreezeGroup[], adapted: readonly Parameter[] = []): Parameter[] {
  const groups = frozenGroups(freeze);
  const fixed = new Set(adapted);
  for (const p of params) p.requiresGrad = !(groups.has(p.group) || fixed.has(p));
  return params.filter((p) => p.requiresGrad);
}

/** Config problems of optim.freeze / optim.lora, each with its fix (train/config.ts reports them). */
export function fineTuneProblems(
  freeze: readonly FreezeGroup[],
  lora: LoraConfig | undefined,
  hasShared: boolean,
): { key: 'freeze' | 'lora'; message: string }[] {
  const out: { key: 'freeze' | 'lora'; message: string }[] = [];
  const groups = frozenGroups(freeze);
  if (!lora && MODEL_GROUPS.every((g) => groups.has(g) || (g === 'shared_expert' && !hasShared)))
    out.push({
      key: 'freeze',
      message: `${JSON.stringify(freeze)} freezes every parameter, so nothing would train: leave a group out (e.g. --set 'optim.freeze=["backbone"]' trains the heads) or add optim.lora adapters`,
    });
  return out;
}
