/**
 * The matmul autotune's cache on Node (src/kernels/matmul-tune.ts TuningStore): one JSON file,
 * written atomically (src/util/atomic-write.ts).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { cacheDir } from '../../util/cache-dir.ts';
import type { TuningStore } from '../matmul-tune.ts';

/** In the machine's cache folder (src/util/cache-dir.ts). */
export function tuningCachePath(): string {
  return join(cacheDir(), 'matmul-tuning.json');
}

/** The cache file at `path` (default: the user's cache folder); a missing or unreadable file is an empty cache. */
export function fileTuningStore(path = tuningCachePath()): TuningStore {
  return {
    where: path,
    load: () => JSON.parse(readFileSync(path, 'utf8')) as unknown,
    save: (cache) => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileAtomic(path, `${JSON.stringify(cache, null, 2)}\n`);
    },
  };
}
