/** Test access to the runtime: quiet, and with new buffers NaN-poisoned so skipped outputs fail. */
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { getRuntime } from '../../src/kernels/node/dawn.ts';

export async function testRuntime(): Promise<DawnRuntime> {
  const rt = await getRuntime({ announce: false });
  rt.poison = true;
  return rt;
}
