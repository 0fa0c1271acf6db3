/**
 * Per-layer isfinite guards. Statistics (non-finite count, min, max, mean) of every layer's forward
 * activations and router logits and of the loss are computed on the GPU each step; their total,
 * plus the global gradient norm's own non-finite flag (any NaN/Inf in any gradient makes the norm
 * non-finite), becomes AdamW's skip flag, so a bad step leaves weights and optimizer state
 * untouched without a readback. The host then reads the rows and names the FIRST bad tensor in
 * forward order, so the report points at where the NaN was born, not at everything it flowed
 * into; a NaN born in backward is named by a gradient pass run only on that bad step.
 */
import type { Tensor } from '../../kernels/tensor.ts';
import { finiteStatsMany, totalNonFinite } from '../../kernels/guard.ts';
import { axpy } from '../../kernels/elementwise.ts';
import type { BadTensor } from '../../diagnose/index.ts';

export interface GuardEntry {
  /** e.g. "model.layers.1.ffn_out", "loss.total", "model.layers.0.self_attn.q_proj.weight.grad". */
  name: string;
  layer: number;
  tensor: Tensor;
}

/** Stats of one group of tensors: a [T, 4] GPU tensor plus the names of its rows. */
export class GuardBatch {
  readonly names: { name: string; layer: number }[];
  readonly stats: Tensor;

  constructor(entries: readonly GuardEntry[]) {
    this.names = entries.map((e) => ({ name: e.name, layer: e.layer }));
    this.stats = finiteStatsMany(entries.map((e) => e.tensor));
  }

  /** Add this batch's non-finite count into `flag` ([1] f32), on the GPU. */
  addTo(flag: Tensor): void {
    const total = totalNonFinite(this.stats);
    axpy(total, flag, 1, 1);
    total.dispose();
  }

  async read(): Promise<BadTensor[]> {
    return this.parse(await this.stats.readF32());
  }

  /** Rows with non-finite values, from this batch's downloaded stats. */
  parse(s: Float32Array): BadTensor[] {
    const bad: BadTensor[] = [];
    this.names.forEach((n, i) => {
      const count = s[i * 4]!;
      if (count !== 0) bad.push({ ...n, nonFinite: count, min: s[i * 4 + 1]!, max: s[i * 4 + 2]!, mean: s[i * 4 + 3]! });
    });
    return bad;
  }

  dispose(): void {
    this.stats.dispose();
  }
}

export function describeBad(b: BadTensor): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toPrecision(4) : String(v));
  // With no finite value at all the min/max/mean come back NaN: say that instead of printing them.
  const finite = Number.isFinite(b.min) && Number.isFinite(b.max) ? `finite min ${f(b.min)} max ${f(b.max)} mean ${f(b.mean)}` : 'no finite value at all';
  return `${b.name}${b.layer >= 0 ? ` (layer ${b.layer})` : ''}: ${b.nonFinite} non-finite values; ${finite}`;
}
