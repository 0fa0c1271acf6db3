/**
 * Sliding windows of T+1 points over time-contiguous segments: inputs w[0:T], labels w[1:T+1]
 * (next-step targets), loss mask 1. Windows are cut on the fly from the segments, so memory is
 * the series plus a few numbers per window, not T floats per window.
 *
 * Normalisation: x' = (x - mean) / scale with scale = std + NORM_EPS, or scale = 1 when std = 0
 * (a constant window maps to exact zeros instead of 0/eps noise or 0/0 = NaN). mean/std come from
 * the window's INPUT part only (the labels are the future: using them would leak), or from the
 * series' training part ('series'), or are 0/1 ('none'). Each window's (mean, scale) is kept so
 * predictions can be mapped back: x = x' * scale + mean.
 */
import { z } from 'zod';
import { Rng } from '../../util/rng.ts';
import type { DataConfig } from './config.ts';
import { DataError } from './errors.ts';

export const NORM_EPS = 1e-5;

/** A time-contiguous run of one cleaned series (its train part or its validation part). */
export interface Segment {
  /** Index of the series in the cleaned list. */
  seriesIndex: number;
  seriesId: string;
  values: Float64Array;
  /** Position of values[0] in the whole series. */
  offset: number;
  /** Statistics for normalize: 'series' (from the series' train part). */
  stats?: { mean: number; std: number };
  /** Class of the series (classification data). */
  classLabel?: number;
}

export interface Batch {
  /** B*T, row-major [B, T]. */
  inputs: Float32Array;
  /** B*T, labels[b, t] = normalised point t+1 of window b. */
  labels: Float32Array;
  /** B*T, 1 = counts in the loss; 0 only on padding rows of a padded last batch. */
  mask: Float32Array;
  B: number;
  T: number;
  /** Real windows in the batch (< B only for a padded last batch). */
  rows: number;
  /** Window ids (for the window() lookup); -1 on padding rows. */
  index: Int32Array;
  /** Per row: x = x' * scale + mean. */
  mean: Float32Array;
  scale: Float32Array;
  /** Training epoch the batch's last window came from (0-based). */
  epoch: number;
  /** Per row: class label of the window's series, -1 when unlabelled or padding (cross-entropy ignores -1). */
  classes: Int32Array;
}

export interface WindowInfo {
  inputs: Float32Array;
  labels: Float32Array;
  mean: number;
  scale: number;
  seriesIndex: number;
  seriesId: string;
  /** Index of the window's first point in the whole series. */
  start: number;
}

const DataStateSchema = z
  .object({
    epoch: z.number().int().min(0),
    cursor: z.number().int().min(0),
    rngState: z.number().int().min(0).max(0xffffffff),
    windows: z.number().int().min(0),
  })
  .strict();
/** Resumable position of a WindowDataset, saved in checkpoints. */
export type DataState = z.infer<typeof DataStateSchema>;

export interface WindowOptions {
  contextLength: number;
  stride: number;
  normalize: DataConfig['normalize'];
  /** Seed of the epoch shuffles. */
  seed?: number;
}

/** Window starts in a segment of length n: every `stride`, plus one flush with the end so the last points are used. */
export function windowStarts(n: number, T: number, stride: number): number[] {
  const last = n - (T + 1);
  if (last < 0) return [];
  const starts: number[] = [];
  for (let s = 0; s <= last; s += stride) starts.push(s);
  if (starts[starts.length - 1] !== last) starts.push(last);
  return starts;
}

/** Population mean and standard deviation (float64, two passes for accuracy). */
export function meanStd(x: Float64Array, from = 0, to = x.length): { mean: number; std: number } {
  const n = to - from;
  let sum = 0;
  for (let i = from; i < to; i++) sum += x[i]!;
  const mean = sum / n;
  let ss = 0;
  for (let i = from; i < to; i++) ss += (x[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / n) };
}

/** Zero-std safe divisor. */
export function normScale(std: number): number {
  return std > 0 ? std + NORM_EPS : 1;
}

export class WindowDataset {
  readonly T: number;
  readonly length: number;
  private readonly seg: Int32Array;
  private readonly start: Int32Array;
  private readonly mean: Float64Array;
  private readonly scale: Float64Array;
  private readonly rng: Rng;
  private order: Int32Array;
  private epoch = 0;
  private cursor = 0;
  private epochRngState: number;

  constructor(
    private readonly segments: readonly Segment[],
    opts: WindowOptions,
  ) {
    const T = (this.T = opts.contextLength);
    const per = segments.map((s) => windowStarts(s.values.length, T, opts.stride));
    const n = (this.length = per.reduce((a, s) => a + s.length, 0));
    this.seg = new Int32Array(n);
    this.start = new Int32Array(n);
    this.mean = new Float64Array(n);
    this.scale = new Float64Array(n);
    let k = 0;
    per.forEach((starts, si) => {
      const s = segments[si]!;
      if (opts.normalize === 'series' && !s.stats) throw new Error(`segment ${s.seriesId} has no series statistics (normalize: 'series')`);
      for (const st of starts) {
        this.seg[k] = si;
        this.start[k] = st;
        const { mean, std } = opts.normalize === 'window' ? meanStd(s.values, st, st + T) : opts.normalize === 'series' ? s.stats! : { mean: 0, std: 0 };
        this.mean[k] = mean;
        this.scale[k] = normScale(std);
        k++;
      }
    });
    this.rng = new Rng(opts.seed ?? 0);
    this.epochRngState = this.rng.state;
    this.order = this.shuffled();
  }

  /** A fresh permutation drawn from the rng (Fisher-Yates on a typed array). */
  private shuffled(): Int32Array {
    const o = new Int32Array(this.length);
    for (let i = 0; i < o.length; i++) o[i] = i;
    for (let i = o.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      const t = o[i]!;
      o[i] = o[j]!;
      o[j] = t;
    }
    return o;
  }

  /** Write window w, normalised, into row `row` of a batch. */
  private fill(b: Batch, row: number, w: number): void {
    const T = this.T;
    const x = this.segments[this.seg[w]!]!.values;
    const s = this.start[w]!;
    const m = this.mean[w]!;
    const inv = 1 / this.scale[w]!;
    const o = row * T;
    for (let t = 0; t < T; t++) {
      b.inputs[o + t] = (x[s + t]! - m) * inv;
      b.labels[o + t] = (x[s + t + 1]! - m) * inv;
      b.mask[o + t] = 1;
    }
    b.index[row] = w;
    b.classes[row] = this.segments[this.seg[w]!]!.classLabel ?? -1;
    b.mean[row] = m;
    b.scale[row] = this.scale[w]!;
  }

  private emptyBatch(B: number): Batch {
    const n = B * this.T;
    return {
      inputs: new Float32Array(n),
      labels: new Float32Array(n),
      mask: new Float32Array(n),
      B,
      T: this.T,
      rows: 0,
      index: new Int32Array(B).fill(-1),
      mean: new Float32Array(B),
      scale: new Float32Array(B).fill(1),
      epoch: this.epoch,
      classes: new Int32Array(B).fill(-1),
    };
  }

  private checkBatchSize(B: number): void {
    if (!Number.isInteger(B) || B < 1) throw new DataError(`batch size ${B} is not a positive integer: fix schedule.microBatch`);
    if (this.length === 0)
      throw new DataError(
        'no windows to draw batches from: the series are shorter than data.contextLength + 1 or validFraction left nothing; lower data.contextLength or add data',
      );
  }

  /**
   * The next B windows of the shuffled epoch order. Always exactly B rows: a batch that reaches the
   * end of an epoch continues into the next one (reshuffled), so shapes never change.
   */
  nextBatch(B: number): Batch {
    this.checkBatchSize(B);
    const b = this.emptyBatch(B);
    for (let r = 0; r < B; r++) {
      if (this.cursor === this.length) {
        this.epoch++;
        this.cursor = 0;
        this.epochRngState = this.rng.state;
        this.order = this.shuffled();
      }
      this.fill(b, r, this.order[this.cursor++]!);
    }
    b.rows = B;
    b.epoch = this.epoch;
    return b;
  }

  /**
   * All windows in order (series, then time), for validation. The last batch has fewer rows, or with
   * pad: true keeps B rows with mask 0 on the padding (fixed shapes for the GPU).
   */
  *batches(B: number, opts: { pad?: boolean } = {}): Generator<Batch> {
    this.checkBatchSize(B);
    for (let first = 0; first < this.length; first += B) {
      const rows = Math.min(B, this.length - first);
      const b = this.emptyBatch(opts.pad ? B : rows);
      for (let r = 0; r < rows; r++) this.fill(b, r, first + r);
      b.rows = rows;
      yield b;
    }
  }

  /** One window, normalised, with where it came from. */
  window(w: number): WindowInfo {
    if (!Number.isInteger(w) || w < 0 || w >= this.length) throw new RangeError(`window ${w} out of range 0..${this.length - 1}`);
    const b = this.emptyBatch(1);
    this.fill(b, 0, w);
    const s = this.segments[this.seg[w]!]!;
    return {
      inputs: b.inputs,
      labels: b.labels,
      mean: this.mean[w]!,
      scale: this.scale[w]!,
      seriesIndex: s.seriesIndex,
      seriesId: s.seriesId,
      start: s.offset + this.start[w]!,
    };
  }

  /** Position in the shuffled stream; restore() of it makes nextBatch() repeat the same batches. */
  state(): DataState {
    return { epoch: this.epoch, cursor: this.cursor, rngState: this.epochRngState, windows: this.length };
  }

  restore(raw: unknown): void {
    const r = DataStateSchema.safeParse(raw);
    if (!r.success)
      throw new DataError(
        `invalid data state in checkpoint: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}: the checkpoint is damaged or from another version`,
      );
    const st = r.data;
    if (st.windows !== this.length) {
      throw new DataError(
        `checkpoint was saved with ${st.windows} training windows but the data now gives ${this.length}: the data or data config changed since; resume with the same data and config`,
      );
    }
    if (st.cursor > this.length) throw new DataError(`invalid data state in checkpoint: cursor ${st.cursor} > ${this.length} windows`);
    // Re-draw the epoch's permutation from the state the rng had when it was drawn.
    this.rng.state = st.rngState;
    this.epochRngState = st.rngState;
    this.order = this.shuffled();
    this.epoch = st.epoch;
    this.cursor = st.cursor;
  }
}
