/**
 * The page's device: navigator.gpu opened by the engine's own device code (src/kernels/device.ts:
 * the adapter's largest limits, the features the kernels use, the same DeviceCaps and kernel
 * policy as on Node), and the Dawn runtime on it (Chromium's WebGPU is Dawn too).
 */
/// <reference lib="dom" />
import { openDevice } from '../kernels/device.ts';
import { DawnRuntime } from '../kernels/runtime.ts';

export const NO_WEBGPU =
  'this browser offers no WebGPU (navigator.gpu is missing): use a current Chrome or Edge (113 or later), Safari 26 or Firefox 141; ' +
  'on Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu. The page must come from https:// or http://127.0.0.1 (a secure context)';

export async function openPageRuntime(): Promise<DawnRuntime> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new Error(NO_WEBGPU);
  return new DawnRuntime(await openDevice(navigator.gpu, { announce: false, backend: 'browser WebGPU' }));
}
