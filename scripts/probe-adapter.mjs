// Prints the WebGPU adapter Dawn finds, or exits 1. Plain JS so setup can run it before anything is built.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
globalThis.__probeGpu = gpu; // keep Dawn's instance alive (it segfaults if collected)
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('no WebGPU adapter');
  process.exit(1);
}
const info = adapter.info ?? {};
console.log(`${info.vendor || '?'} ${info.device || info.description || '?'} (${info.architecture || ''})`.trim());
process.exit(0);
