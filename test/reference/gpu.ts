/** Test access to the runtime: quiet, and with new buffers NaN-poisoned so skipped outputs fail. */
import type { TestContext } from 'vitest';
import type { DawnRuntime } from '../../src/kernels/runtime.ts';
import { getRuntime } from '../../src/kernels/node/dawn.ts';
import type { Backend } from '../../src/kernels/tensor.ts';

let announced = false;

export async function testRuntime(): Promise<DawnRuntime> {
  const rt = await getRuntime({ announce: false });
  rt.poison = true;
  // Once per test file: a device without shader-f16 (SwiftShader) skips every f16 case, and the
  // log says why before the list of skipped tests does.
  if (!rt.caps.f16 && !announced) {
    announced = true;
    console.warn(`[test] ${noF16Reason(rt)}: the f16 cases of this file are skipped`);
  }
  return rt;
}

/** Why an f16 case cannot run here, naming the adapter. */
export function noF16Reason(rt: Backend): string {
  const a = rt.caps.adapter;
  return `this device (${a.device || a.description}) has no shader-f16`;
}

/** Skip the running test, with the reason as its note, when the device has no shader-f16. */
export function skipWithoutF16(rt: Backend, ctx: TestContext): void {
  if (!rt.caps.f16) ctx.skip(noF16Reason(rt));
}
