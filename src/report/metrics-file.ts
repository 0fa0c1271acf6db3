/** A run's metrics.jsonl read from disk and parsed (metrics-reader.ts). */
import { readFileSync } from 'node:fs';
import { parseMetrics, type RunMetrics } from './metrics-reader.ts';

export function readMetrics(path: string): RunMetrics {
  return parseMetrics(readFileSync(path, 'utf8'), path);
}
