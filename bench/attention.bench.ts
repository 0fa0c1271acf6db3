/**
 * Causal attention forward + backward timing (standalone: `npx tsx bench/attention.bench.ts`).
 * Default shape is TimeMoE-50M's attention at B=4, T=256: H=12, hd=32. Options:
 *   --B 4 --T 256 --H 12 --hd 32 --reps 10 --unroll both|on|off
 * Reports the first call (pipeline compile included) and the median / min of the rest, each a
 * full forward + backward recorded into one submit and waited for, plus the process CPU time
 * (lavapipe runs on this process's threads, so on a loaded machine CPU time is the steadier number).
 */
import { getRuntime } from '../src/kernels/runtime.ts';
import { attention, attentionBackward, type AttentionDims } from '../src/kernels/attention.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const B = Number(arg('B', '4'));
  const T = Number(arg('T', '256'));
  const H = Number(arg('H', '12'));
  const hd = Number(arg('hd', '32'));
  const reps = Number(arg('reps', '10'));
  const mode = arg('unroll', 'both');
  const modes = mode === 'both' ? [true, false] : [mode === 'on'];
  const rt = await getRuntime({ announce: true });
  const n = B * T * H * hd;
  const rand = (): Float32Array => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const shape = [B, T, H * hd];
  const [q, k, v, dO] = [rand(), rand(), rand(), rand()].map((a) => rt.upload(a, shape));
  // Causal: T(T+1)/2 (query, key) pairs per (b, h); forward 2 dots of hd (score, p·v) = 4 hd flops,
  // backward 5 dots (s and dp twice, dq, dk, dv) = 10 hd flops.
  const pairs = (B * H * T * (T + 1)) / 2;
  const flops = pairs * hd * 14;

  for (const unroll of modes) {
    const d: AttentionDims = { B, T, H, hd, unroll };
    const times: number[] = [];
    const cpu: number[] = [];
    let fwdOnly = Infinity;
    for (let r = 0; r <= reps; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const { o, lse } = attention(q!, k!, v!, d);
      if (r > 0 && r <= 3) {
        // a few forward-only timings, to split the total
        await rt.sync();
        fwdOnly = Math.min(fwdOnly, performance.now() - t0);
      }
      const g = attentionBackward(dO!, q!, k!, v!, o, lse, d);
      await rt.sync();
      times.push(performance.now() - t0);
      const c1 = process.cpuUsage(c0);
      cpu.push((c1.user + c1.system) / 1000);
      for (const t of [o, lse, g.dq, g.dk, g.dv]) t.dispose();
    }
    const first = times.shift()!;
    cpu.shift();
    const cpuMin = Math.min(...cpu);
    const sorted = [...times].sort((a, b) => a - b);
    const med = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `attention B=${B} T=${T} H=${H} hd=${hd} unroll=${unroll}: first call ${first.toFixed(0)} ms (compile); ` +
        `fwd+bwd median ${med.toFixed(1)} ms, min ${sorted[0]!.toFixed(1)} ms (fwd alone min ${fwdOnly.toFixed(1)} ms); ` +
        `process CPU time min ${cpuMin.toFixed(0)} ms (all lavapipe threads; less sensitive to other load); ` +
        `${(flops / (sorted[0]! * 1e6)).toFixed(2)} GFLOP/s at min`,
    );
  }
  process.exit(0);
}

void main();
