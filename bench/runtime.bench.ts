/** DawnRuntime overheads on the current adapter: an empty submit round trip and a 1 MiB readback. */
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { round, timeAsync, type SuiteContext, type SuiteResult } from './harness.ts';

export async function run(ctx: SuiteContext): Promise<SuiteResult> {
  const rt = await getRuntime({ announce: false });
  const samples = ctx.quick ? 3 : 7;
  const rows = [];

  // Empty submit: an encoder with nothing in it, then wait for the queue.
  const submit = await timeAsync(
    async () => {
      rt.device.queue.submit([rt.device.createCommandEncoder().finish()]);
      await rt.device.queue.onSubmittedWorkDone();
    },
    { iters: 200, samples },
  );
  rows.push({
    operation: 'empty submit + onSubmittedWorkDone',
    'median ms': round(submit.medianMs, 4),
    'best ms': round(submit.bestMs, 4),
    iters: submit.iters,
    samples: submit.samples,
  });

  // 1 MiB download: a 256K-float tensor read back through a staging buffer.
  const t = rt.zeros([256 * 1024]);
  await rt.sync();
  const read = await timeAsync(() => t.readF32(), { iters: 50, samples });
  rows.push({
    operation: 'readback 1 MiB (256K f32)',
    'median ms': round(read.medianMs, 4),
    'best ms': round(read.bestMs, 4),
    iters: read.iters,
    samples: read.samples,
  });
  rows.push({
    operation: 'readback bandwidth (GB/s, best)',
    'median ms': null,
    'best ms': round(1 / 1024 / (read.bestMs / 1000), 2),
    iters: null,
    samples: null,
  });
  t.dispose();
  ctx.log(`submit ${submit.medianMs.toFixed(3)} ms, 1 MiB readback ${read.medianMs.toFixed(3)} ms`);
  return {
    title: 'runtime overheads',
    rows,
    notes: [
      'Per-iteration times: `iters` back-to-back awaited operations per sample, median and best of `samples` samples.',
      'The CPU is shared with other processes; best is the less noisy figure.',
    ],
  };
}
