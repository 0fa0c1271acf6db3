/** A short job that proves the GPU path works end to end: device, a kernel, upload and readback. */
import { getRuntime } from '../../kernels/node/dawn.ts';

export async function runSmoke(): Promise<void> {
  const rt = await getRuntime();
  const n = 1 << 16;
  const data = Float32Array.from({ length: n }, (_, i) => i * 0.5);
  const t = rt.upload(data, [n]);
  const back = await t.readF32();
  for (let i = 0; i < n; i++) if (back[i] !== data[i]) throw new Error(`smoke: readback mismatch at ${i}`);
  rt.fill(t, 1.25);
  const filled = await t.readF32();
  if (!filled.every((v) => v === 1.25)) throw new Error('smoke: fill kernel wrote wrong values');
  t.dispose();
  console.log(`smoke ok: ${n} floats uploaded, filled by a WGSL kernel and read back; pool live=${rt.memory().liveBytes} B`);
}
