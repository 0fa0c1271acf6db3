/**
 * A training config read from its JSON file (train.js --config): the Node side of config.ts, which
 * parses and validates it (the browser page parses its config there without a file).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, jsonErrorMessage, parseConfig, type TrainConfig } from './config.ts';

export function loadConfig(path: string, overrides: readonly string[] = []): TrainConfig {
  const full = resolve(path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`config file not found: ${full} (check the --config path)`);
    if (code === 'EISDIR')
      throw new ConfigError(`--config ${path} is a folder, not a file: pass the JSON file (e.g. --config ${join(path, 'small-moe.json')})`);
    throw new ConfigError(`cannot read config ${full} (${code ?? (e as Error).message}): check the file's permissions, or the --config path`);
  }
  // A byte-order mark (some Windows editors write one) is not JSON, but not a mistake either.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(jsonErrorMessage(full, text, e as Error));
  }
  return parseConfig(raw, full, overrides);
}
