/**
 * Timing of recorded GPU work, shared by the matmul tuner and the benchmarks: warm up (the first
 * call compiles pipelines), time one call to size a batch to about `sampleMs`, then time
 * `samples` batches, each recorded into one submit and awaited once.
 */
export async function timeRecorded(
  rt: { sync(): Promise<void> },
  record: () => void,
  opts: { samples: number; sampleMs: number; maxIters: number },
): Promise<{ per: number[]; iters: number }> {
  record();
  await rt.sync();
  let t0 = performance.now();
  record();
  await rt.sync();
  const one = Math.max(performance.now() - t0, 1e-3);
  const iters = Math.max(1, Math.min(opts.maxIters, Math.round(opts.sampleMs / one)));
  const per: number[] = [];
  for (let s = 0; s < opts.samples; s++) {
    t0 = performance.now();
    for (let i = 0; i < iters; i++) record();
    await rt.sync();
    per.push((performance.now() - t0) / iters);
  }
  return { per, iters };
}
