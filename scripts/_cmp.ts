import { readSafetensors } from '../src/train/persist/safetensors.ts';
const [a, b] = process.argv.slice(2);
const fa = await readSafetensors(a!),
  fb = await readSafetensors(b!);
let worst = 0,
  worstName = '',
  maxAbs = 0;
for (const [n, t] of fa.tensors) {
  const u = fb.tensors.get(n)!;
  for (let i = 0; i < t.data.length; i++) {
    const d = Math.abs(t.data[i]! - u.data[i]!);
    const r = d / (Math.abs(t.data[i]!) + 1e-3);
    if (r > worst) {
      worst = r;
      worstName = n;
    }
    maxAbs = Math.max(maxAbs, d);
  }
}
console.log({ worst, worstName, maxAbs });
