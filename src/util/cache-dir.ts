/**
 * The per-user cache of measurements that belong to the machine, not to a run: the matmul autotune
 * choices (src/kernels/matmul-tune.ts) and the host AdamW rate (src/train/plan/step-time.ts).
 * $WEBGPU_MOE_CACHE, else $XDG_CACHE_HOME/webgpu-moe, else ~/.cache/webgpu-moe.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  return process.env.WEBGPU_MOE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'webgpu-moe');
}
