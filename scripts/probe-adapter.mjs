// Prints the WebGPU adapter Dawn finds, or exits 1. Plain JS so setup can run it before anything is built.
// With --json: the adapter's info, features, subgroup sizes and compute limits as one JSON line
// (scripts/implementations.ts records them per implementation).
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
if (process.argv.includes('--json')) {
  const limits = {};
  for (const k of [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxStorageBuffersPerShaderStage',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ',
    'maxComputeWorkgroupsPerDimension',
    'maxUniformBufferBindingSize',
  ])
    limits[k] = adapter.limits[k];
  const out = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: info.isFallbackAdapter ?? null,
    subgroupMinSize: info.subgroupMinSize ?? null,
    subgroupMaxSize: info.subgroupMaxSize ?? null,
    features: [...adapter.features].sort(),
    limits,
  };
  console.log(JSON.stringify(out));
} else {
  console.log(`${info.vendor || '?'} ${info.device || info.description || '?'} (${info.architecture || ''})`.trim());
}
process.exit(0);
