/**
 * A GPU device lost while the run trains (a driver reset, a GPU that fell off the bus, an Xid
 * error, a destroyed device): the weights on it are gone, so nothing can be saved; the run stops
 * (exit 1) naming the step, Dawn's reason, and what is safe: the last good checkpoint and
 * `--resume`, or that none was saved yet (docs/RELIABILITY.md "Device loss").
 */
import type { DawnRuntime } from '../../kernels/runtime.ts';
import { GpuError } from '../../kernels/errors.ts';
import { IoError } from '../../util/atomic-write.ts';
import { EXIT } from '../exit-codes.ts';
import { RunStopped, type Session } from './session.ts';

/** How long a failed GPU call waits for Dawn to report the loss it may have been the first sign of. */
const LOST_GRACE_MS = 200;

/**
 * The device loss behind `e`, or null when `e` is something else. A call on a device that was
 * just lost can fail with Dawn's own error (a rejected map, an operation error) before the lost
 * promise settles: the runtime is asked again after a moment before the error is taken as
 * something else.
 */
export async function deviceLoss(rt: DawnRuntime | null, e: unknown): Promise<GpuError | null> {
  if (e instanceof GpuError && e.kind === 'device-lost') return e;
  if (!rt) return null;
  if (rt.gpu.lost) return rt.gpu.lost;
  if (e instanceof RunStopped || e instanceof IoError) return null;
  // The runtime sets gpu.lost when Dawn's lost promise settles (src/kernels/device.ts).
  await new Promise((r) => setTimeout(r, LOST_GRACE_MS));
  return rt.gpu.lost;
}

/** "destroyed: device was destroyed" out of the runtime's "WebGPU device lost (destroyed): device was destroyed". */
function reason(lost: GpuError): string {
  const m = /device lost \(([^)]*)\):\s*(.*)$/s.exec(lost.message);
  const text = m ? `${m[1]}${m[2]!.trim() ? `: ${m[2]!.trim()}` : ''}` : lost.message;
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/** The run's stop for a lost device; `when` is "at step N", "during the validation before training", ... */
export function deviceLostStop(s: Session, lost: GpuError, when: string): RunStopped {
  const next = s.lastGood
    ? `the last good checkpoint is ${s.show(s.lastGood)} (continue with --resume)`
    : `no checkpoint was saved yet: start again with --overwrite`;
  return new RunStopped(
    `the GPU device was lost ${when} (${reason(lost)}): ${next}. The weights on the device are gone, so nothing was saved at this point; if it happens again, check the GPU (nvidia-smi, dmesg) and its driver`,
    EXIT.stopped,
  );
}
