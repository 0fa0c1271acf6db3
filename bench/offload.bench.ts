/**
 * optim.offload "host": what the host side costs on this machine.
 *   (a) host AdamW update rate, parameters/s, on 1 and 2 worker threads (HostAdamW.apply on
 *       8M parameters, minus the transfers measured in (b));
 *   (b) GPU <-> host bandwidth of the runtime (readMany of gradients, write of working weights);
 *   (c) a small-moe optimizer step with and without offload (Trainer.step, same data).
 * Each timed output is checked first: the offloaded step's loss equals the GPU AdamW's (1e-5).
 */
import { getRuntime } from '../src/kernels/node/dawn.ts';
import { parseConfig } from '../src/train/config.ts';
import { buildRunModel } from '../src/train/step/model-setup.ts';
import { Trainer } from '../src/train/step/trainer.ts';
import { HostAdamW } from '../src/optim/host-adamw.ts';
import { nodeUpdateWorkers } from '../src/optim/node/update-workers.ts';
import { Parameter } from '../src/model/parameter.ts';
import { round, type BenchRow, type SuiteContext, type SuiteResult } from './harness.ts';
import { syntheticBatch } from './workloads.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(ctx: SuiteContext): Promise<SuiteResult[]> {
  const rt = await getRuntime({ announce: false });
  const reps = ctx.quick ? 2 : 5;
  // (b) bandwidth: one 32 MiB tensor down and up.
  const n = 8 << 20;
  const t = rt.upload(new Float32Array(n).fill(0.5), [n], 'f32', 'bandwidth');
  const host = new Float32Array(n).fill(0.25);
  const down: number[] = [];
  const up: number[] = [];
  for (let i = 0; i < reps; i++) {
    let t0 = performance.now();
    await rt.read(t);
    down.push(performance.now() - t0);
    t0 = performance.now();
    rt.write(t, host);
    await rt.sync();
    up.push(performance.now() - t0);
  }
  t.dispose();
  const gbps = (ms: number) => round((4 * n) / (ms / 1000) / 1e9, 2);
  const bw: BenchRow[] = [
    { direction: 'GPU -> host (readMany)', MiB: 32, 'ms (median)': round(median(down), 1), 'GB/s': gbps(median(down)) },
    { direction: 'host -> GPU (write)', MiB: 32, 'ms (median)': round(median(up), 1), 'GB/s': gbps(median(up)) },
  ];
  ctx.log(`bandwidth: down ${bw[0]!['GB/s']} GB/s, up ${bw[1]!['GB/s']} GB/s`);

  // (a) the host update on 8M parameters in two tensors, f32 working weights.
  const rates: BenchRow[] = [];
  for (const threads of [1, 2]) {
    const params = [0, 1].map((i) => {
      const p = new Parameter(rt.upload(new Float32Array(n / 2).fill(0.1), [n / 2], 'f32', `p${i}`), `p${i}`, { group: 'experts', decay: true, layer: 0 });
      p.keepHostMaster(new Float32Array(n / 2).fill(0.1));
      p.grad = rt.upload(new Float32Array(n / 2).fill(0.01), [n / 2], 'f32', `g${i}`);
      return p;
    });
    const opt = new HostAdamW(rt, params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, { threads, workers: nodeUpdateWorkers });
    const ms: number[] = [];
    await opt.apply(1e-3, 1);
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await opt.apply(1e-3, 1);
      ms.push(performance.now() - t0);
    }
    const transfer = median(down) + median(up); // 32 MiB each way, as this update moves
    const updateMs = Math.max(median(ms) - transfer, 1e-3);
    rates.push({
      threads,
      'apply ms (median)': round(median(ms), 1),
      'of which transfers ms': round(transfer, 1),
      'M parameters/s (update)': round(n / (updateMs / 1000) / 1e6, 1),
      'M parameters/s (with transfers)': round(n / (median(ms) / 1000) / 1e6, 1),
    });
    opt.dispose();
    for (const p of params) {
      p.grad!.dispose(); // set by hand above, not tracked by autograd
      p.grad = null;
      p.dispose();
    }
    ctx.log(`host AdamW, ${threads} thread(s): ${rates[rates.length - 1]!['M parameters/s (update)']} M parameters/s`);
  }

  // (c) small-moe steps with and without offload.
  const steps: BenchRow[] = [];
  const losses: number[][] = [];
  for (const offload of ['none', 'host'] as const) {
    const cfg = parseConfig({
      model: { preset: 'small-moe' },
      data: { source: { kind: 'synthetic', series: 2, length: 100 }, contextLength: 64 },
      optim: { lr: 1e-3, offload },
      schedule: { steps: 100, microBatch: 16 },
    });
    const built = buildRunModel(rt, cfg);
    const trainer = new Trainer(rt, built.model, built.optimizer, cfg);
    const batch = syntheticBatch(16, 64, 7);
    const ms: number[] = [];
    const l: number[] = [];
    for (let s = 1; s <= reps + 2; s++) {
      const m = await trainer.step(s, [batch]);
      l.push(m.loss);
      if (s > 2) ms.push(m.ms);
    }
    losses.push(l);
    steps.push({
      'optim.offload': offload,
      'ms/step (median)': round(median(ms), 1),
      'ms/step (min)': round(Math.min(...ms), 1),
      'ms/step (max)': round(Math.max(...ms), 1),
    });
    trainer.dispose();
    built.dispose();
  }
  const same = losses[0]!.every((x, i) => Math.abs(x - losses[1]![i]!) < 1e-5);
  if (!same) throw new Error(`offload bench: the offloaded steps' losses differ from the GPU AdamW's: ${losses[0]} vs ${losses[1]}`);
  return [
    { title: 'host <-> GPU bandwidth (32 MiB)', rows: bw },
    {
      title: 'host AdamW update rate (8M parameters, f32 working weights)',
      rows: rates,
      notes: [
        'The update rate subtracts the transfers measured above; on lavapipe both "devices" share the same two cores, so worker threads compete with the GPU work.',
      ],
    },
    {
      title: 'small-moe optimizer step, GPU AdamW vs offloaded',
      rows: steps,
      notes: ['Checked first: the two modes give the same losses (within 1e-5) on the same batch.'],
    },
  ];
}
