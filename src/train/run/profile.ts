/**
 * The run's device extras around the steps: the matmul autotune before the model is built
 * (device.autotune) and the kernel profiler of train.js --profile (a table on stderr and
 * <logging.dir>/profile.json).
 */
import { timestampsPrecise } from '../../kernels/node/dawn.ts';
import { loadTuning, tuneMatmuls } from '../../kernels/matmul-tune.ts';
import { fileTuningStore } from '../../kernels/node/tuning-cache.ts';
import { GpuProfiler, formatProfile, profileJson } from '../../kernels/profiler.ts';
import type { DawnRuntime } from '../../kernels/runtime.ts';
import type { Backend } from '../../kernels/tensor.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import type { TrainConfig } from '../config.ts';
import { stepMatmuls } from '../plan/simulate.ts';
import { thisTarget } from '../plan/targets.ts';
import { faultAt } from './faults.ts';

/** Tune the tiled matmul for the step's shape classes not in this adapter's cache yet. */
export async function autotune(rt: DawnRuntime, cfg: TrainConfig): Promise<void> {
  const store = fileTuningStore();
  const cached = loadTuning(rt, store);
  const t0 = performance.now();
  const tuned = await tuneMatmuls(rt, stepMatmuls(cfg, thisTarget(rt.caps)), store);
  if (tuned.length)
    console.error(
      `[tune] ${tuned.length} matmul shape classes tuned in ${((performance.now() - t0) / 1000).toFixed(1)} s (${cached} cached before; ${store.where})`,
    );
}

export function startProfiler(rt: DawnRuntime): GpuProfiler | null {
  const p = new GpuProfiler(rt);
  if (p.supported) return p;
  console.error("[profile] this device has no 'timestamp-query' feature: --profile records nothing");
  return null;
}

/** Print the per-op table to stderr and write profile.json; a failure here must not hide the run's own outcome. */
export async function reportProfile(rt: Backend, profiler: GpuProfiler, path: string, show: (p: string) => string): Promise<void> {
  try {
    profiler.pause();
    await profiler.flush();
    const precise = timestampsPrecise();
    console.error(formatProfile(profiler.summary('op'), { byShader: profiler.summary('shader'), precise }));
    writeFileAtomic(path, `${JSON.stringify(profileJson(profiler, { adapter: rt.caps.adapter, preciseTimestamps: precise }), null, 2)}\n`, {
      action: 'write',
      beforeWrite: faultAt('profile.json'),
    });
    console.error(`[profile] written to ${show(path)}`);
    profiler.destroy();
  } catch (e) {
    console.error(`[profile] could not report: ${e instanceof Error ? e.message : String(e)}`);
  }
}
