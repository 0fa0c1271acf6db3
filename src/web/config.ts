/**
 * The page's training config: the repository's small-moe.json (embedded at build time: one source
 * of truth with `node train.js --config small-moe.json`) with the page's `--set` lines applied by
 * the same parser and checks as the CLI (src/train/config.ts).
 */
import smallMoe from '../../small-moe.json' with { type: 'json' };
import { parseConfig, type TrainConfig } from '../train/config.ts';

export const CONFIG_NAME = 'small-moe.json';

export const DEFAULT_CONFIG: TrainConfig = parseConfig(smallMoe, CONFIG_NAME);

/**
 * small-moe.json with `overrides` (`key=value`, one per entry, as train.js --set takes them) and
 * the page's data source (as a config file would hold it: checked with the rest).
 */
export function pageConfig(overrides: readonly string[], source?: Record<string, unknown>): TrainConfig {
  const raw = structuredClone(smallMoe) as Record<string, unknown> & { data: Record<string, unknown> };
  if (source) raw.data = { ...raw.data, source };
  return parseConfig(raw, CONFIG_NAME, overrides);
}
