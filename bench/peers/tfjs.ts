/**
 * The peer: tfjs-backend-webgpu's tf.matMul on the same Dawn instance as our runtime.
 * tfjs-backend-webgpu registers itself only if navigator.gpu exists at import time, so the
 * Dawn globals (installed by our runtime) and globalThis.navigator are set up first and the
 * packages are imported dynamically (docs/DESIGN.md §3). `await t.data()` is the sync point
 * (dataSync needs OffscreenCanvas).
 */
import { checkMatmulSampled, summarize, type CheckOutcome, type Timing } from '../harness.ts';

export type TF = typeof import('@tensorflow/tfjs');

let loaded: Promise<TF> | null = null;

/** Load tfjs + the webgpu backend. Call after getRuntime() so Dawn's instance exists. */
export function loadTfjs(): Promise<TF> {
  loaded ??= (async () => {
    const dawn = (globalThis as { __webgpuMoeDawn?: GPU }).__webgpuMoeDawn;
    if (!dawn) throw new Error('tfjs peer: create the webgpu-moe runtime first (it owns the Dawn instance)');
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn }, configurable: true, writable: true });
    else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: dawn, configurable: true });
    const tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-webgpu');
    const ok = await tf.setBackend('webgpu');
    if (!ok || tf.getBackend() !== 'webgpu') throw new Error(`tfjs peer: webgpu backend unavailable (got ${tf.getBackend()})`);
    await tf.ready();
    return tf;
  })();
  return loaded;
}

/**
 * Time tf.matMul(a, b, transposeA, transposeB) for C [M, N]: `iters` products per sample,
 * synchronised by reading back the last one (queue order makes it wait for all of them). The
 * peer's output is checked on sampled entries first, as ours is; a wrong one is not timed (null).
 */
export async function timeTfMatmul(
  tf: TF,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  opts: { samples?: number; sampleMs?: number } = {},
): Promise<{ timing: Timing | null; check: CheckOutcome }> {
  const samples = opts.samples ?? 5;
  const sampleMs = opts.sampleMs ?? 150;
  const a = tf.randomUniform(transA ? [K, M] : [M, K], -1, 1, 'float32');
  const b = tf.randomUniform(transB ? [N, K] : [K, N], -1, 1, 'float32');
  const c0 = tf.matMul(a, b, transA, transB);
  const check = checkMatmulSampled(await a.data(), await b.data(), await c0.data(), { M, N, K, transA, transB });
  c0.dispose();
  if (!check.ok) {
    a.dispose();
    b.dispose();
    return { timing: null, check };
  }
  const run = async (iters: number) => {
    const outs = [];
    for (let i = 0; i < iters; i++) outs.push(tf.matMul(a, b, transA, transB));
    await outs[outs.length - 1]!.data();
    for (const o of outs) o.dispose();
  };
  await run(1); // compile
  let t0 = performance.now();
  await run(1);
  const iters = Math.max(1, Math.min(200, Math.round(sampleMs / Math.max(performance.now() - t0, 1e-3))));
  const per: number[] = [];
  for (let s = 0; s < samples; s++) {
    t0 = performance.now();
    await run(iters);
    per.push((performance.now() - t0) / iters);
  }
  a.dispose();
  b.dispose();
  return { timing: summarize(per, iters), check };
}
