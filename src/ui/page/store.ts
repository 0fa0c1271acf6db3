/**
 * The page's data: the server's events (src/ui/protocol.ts) folded into one column per logged
 * value, appended as records arrive, so a redraw never walks the records again. A value that was
 * not logged is null; a value logged as NaN / Infinity stays that number (the charts mark it).
 * Pure: no DOM, tested in Node (test/ui/store.test.ts).
 */
import { Diagnoser } from '../../diagnose/diagnoser.ts';
import type { Finding, Note, RunHeaderInput } from '../../diagnose/types.ts';
import type { BadTensorRecord, MetricsRecord, TrainRecord, ValidRecord } from '../../report/metrics-reader.ts';
import type { RunStatus, UiEvent, UiHeader } from '../protocol.ts';

export type Value = number | null;

export interface SkippedStep {
  step: number;
  /** A loss-scale overflow (f16), not a bad step. */
  overflow: boolean;
  lossScale: Value;
  /** Non-finite tensors in forward order: the first is where it was born. */
  tensors: BadTensorRecord[];
}

export interface TrainColumns {
  step: number[];
  loss: Value[];
  lossMain: Value[];
  aux: Value[];
  z: Value[];
  lr: Value[];
  auxFactor: Value[];
  gradNorm: Value[];
  gradNormPostClip: Value[];
  clippedFraction: Value[];
  lossScale: Value[];
  tokensPerSecond: Value[];
  /** Milliseconds the step took (the logger's `ms`). */
  ms: Value[];
  liveBytes: Value[];
  peakBytes: Value[];
  /** [head][i], heads in the config's horizon order. */
  head: Value[][];
  /** [layer][i] */
  entropy: Value[][];
  maxShare: Value[][];
  switchLoss: Value[][];
  /** [layer][expert][i]: the share of the layer's routed tokens each expert got. */
  load: Value[][][];
}

export interface ValidColumns {
  step: number[];
  loss: Value[];
  lossMain: Value[];
  accuracy: Value[];
  horizons: number[];
  /** [horizon index][i] */
  mse: Value[][];
  mae: Value[][];
}

export interface RunData {
  run: number;
  label: string;
  dir: string;
  live: boolean;
  /** dashboard.js follows the run's files: records and status may still change. */
  followed: boolean;
  header: UiHeader | null;
  status: RunStatus;
  message?: string;
  train: TrainColumns;
  valid: ValidColumns;
  skipped: SkippedStep[];
  layers: number;
  experts: number;
  /** The run's diagnosis (src/diagnose), fed the same records as the charts. */
  diagnosis: RunDiagnosis;
}

/**
 * The page's Diagnoser for one run. It needs the header (the baseline, the config) before the
 * first record; records that come first (a resumed run's history is sent before its header) wait
 * until the header comes, or until a drain without one (a run folder without header.json). Those
 * are kept, so a header that comes later still sees every record.
 *
 * Records are queued and judged by drain(), which the page calls in slices of a few milliseconds
 * (a late page's history of 10k steps x 36 layers is ~6 s of detector work on a slow CPU, which
 * must not hold up the charts); findings() is what the records judged so far say.
 */
export class RunDiagnosis {
  private diag: Diagnoser | null = null;
  /** Records to judge from `next` on; before the first header, every record (replayed when it comes). */
  private queue: MetricsRecord[] = [];
  private next = 0;
  private headerSeen = false;
  /** Bumped when the findings may have changed. */
  version = 0;

  /**
   * The run's header. A second one without a reset (header.json rewritten by a resume that kept
   * every line) changes nothing the detectors read: the diagnosis goes on.
   */
  header(h: UiHeader): void {
    if (this.headerSeen) return;
    this.headerSeen = true;
    this.diag = new Diagnoser(h as RunHeaderInput);
    this.next = 0;
    this.version++;
  }

  record(r: MetricsRecord): void {
    this.queue.push(r);
  }

  reset(h: UiHeader | null): void {
    this.diag = null;
    this.queue = [];
    this.next = 0;
    this.headerSeen = false;
    if (h) this.header(h);
    this.version++;
  }

  /** Records not judged yet. */
  get pending(): number {
    return this.queue.length - this.next;
  }

  /** Judge queued records for up to `budgetMs` (all by default); returns how many are left. */
  drain(budgetMs = Number.POSITIVE_INFINITY): number {
    if (this.next >= this.queue.length) return 0;
    // No header yet: judge with none (what it lacks is named by unjudged()).
    this.diag ??= new Diagnoser({});
    const end = performance.now() + budgetMs;
    let n = 0;
    while (this.next < this.queue.length) {
      this.diag.push(this.queue[this.next++]!);
      if (++n % 32 === 0 && performance.now() > end) break;
    }
    if (this.next >= this.queue.length && this.headerSeen) {
      // Judged under the run's header: nothing to replay any more.
      this.queue = [];
      this.next = 0;
    }
    this.version++;
    return this.pending;
  }

  findings(): Finding[] {
    return this.diag?.findings() ?? [];
  }

  notes(): Note[] {
    return this.diag?.notes() ?? [];
  }

  /** What the run's header lacks for some detector ("silence is not health"). */
  unjudged(): string[] {
    return this.diag?.unjudged() ?? [];
  }
}

const TRAIN_SCALARS = [
  'loss',
  'lossMain',
  'aux',
  'z',
  'lr',
  'auxFactor',
  'gradNorm',
  'gradNormPostClip',
  'clippedFraction',
  'lossScale',
  'tokensPerSecond',
  'ms',
  'liveBytes',
  'peakBytes',
] as const;

function emptyTrain(): TrainColumns {
  return {
    step: [],
    loss: [],
    lossMain: [],
    aux: [],
    z: [],
    lr: [],
    auxFactor: [],
    gradNorm: [],
    gradNormPostClip: [],
    clippedFraction: [],
    lossScale: [],
    tokensPerSecond: [],
    ms: [],
    liveBytes: [],
    peakBytes: [],
    head: [],
    entropy: [],
    maxShare: [],
    switchLoss: [],
    load: [],
  };
}

function emptyValid(): ValidColumns {
  return { step: [], loss: [], lossMain: [], accuracy: [], horizons: [], mse: [], mae: [] };
}

const opt = (v: number | undefined): Value => (v === undefined ? null : v);

/** Append `v` to column `k` of a column group, first padding the column with nulls to length `n`. */
function push(cols: Value[][], k: number, n: number, v: Value): void {
  let c = cols[k];
  if (!c) c = cols[k] = [];
  while (c.length < n) c.push(null);
  c.push(v);
}

/** The run's expert count from its header's config (0 when not known). */
function expertsOf(h: UiHeader | null): number {
  const m = (h?.config as { model?: { experts?: unknown } } | undefined)?.model;
  return typeof m?.experts === 'number' ? m.experts : 0;
}

function appendTrain(d: RunData, r: TrainRecord): void {
  const t = d.train;
  const n = t.step.length;
  t.step.push(r.step);
  const scalars: Record<(typeof TRAIN_SCALARS)[number], Value> = {
    loss: r.loss,
    lossMain: r.lossMain,
    aux: r.aux,
    z: r.z,
    lr: r.lr,
    auxFactor: r.auxFactor,
    gradNorm: r.gradNorm,
    gradNormPostClip: r.gradNormPostClip,
    clippedFraction: r.clippedFraction,
    lossScale: opt(r.lossScale),
    // A step of zero recorded time has no rate: leave a gap rather than write Infinity tok/s.
    tokensPerSecond: r.tokens !== undefined && r.ms !== undefined && r.ms > 0 ? r.tokens / (r.ms / 1000) : null,
    ms: opt(r.ms),
    liveBytes: opt(r.liveBytes),
    peakBytes: opt(r.peakBytes),
  };
  for (const k of TRAIN_SCALARS) t[k].push(scalars[k]);
  (r.headLosses ?? []).forEach((v, h) => push(t.head, h, n, v));
  for (const l of r.routing) {
    push(t.entropy, l.layer, n, l.entropy);
    push(t.maxShare, l.layer, n, l.maxShare);
    push(t.switchLoss, l.layer, n, opt(l.switchLoss));
    const layer = (t.load[l.layer] ??= []);
    // Routing not available on this step (a non-finite forward; the log has null): NaN, a marked
    // cell, never a made-up distribution and never "no record".
    const load = l.load.length ? l.load : Array.from({ length: Math.max(d.experts, expertsOf(d.header)) }, () => NaN);
    load.forEach((v, e) => push(layer, e, n, v));
    d.experts = Math.max(d.experts, load.length);
  }
  d.layers = Math.max(d.layers, t.entropy.length);
  if (r.skipped || r.overflow) d.skipped.push({ step: r.step, overflow: r.overflow ?? false, lossScale: opt(r.lossScale), tensors: r.nonFinite });
}

function appendValid(d: RunData, r: ValidRecord): void {
  const v = d.valid;
  const n = v.step.length;
  v.step.push(r.step);
  v.loss.push(r.loss);
  v.lossMain.push(r.lossMain);
  v.accuracy.push(opt(r.accuracy));
  for (const h of r.horizons) {
    let k = v.horizons.indexOf(h.horizon);
    if (k < 0) k = v.horizons.push(h.horizon) - 1;
    push(v.mse, k, n, h.mse);
    push(v.mae, k, n, h.mae);
  }
}

/** Pad every column group to the full length, so each column lines up with its steps. */
function padded(cols: Value[][], n: number): Value[][] {
  for (const c of cols) while (c && c.length < n) c.push(null);
  return cols;
}

export class Store {
  readonly runs: RunData[] = [];
  /** The last event applied (the server's seq); a reconnect resumes after it. */
  seq = 0;
  /** Bumped on every change, so views redraw only when something changed. */
  version = 0;

  apply(ev: UiEvent): void {
    this.version++;
    if (ev.type === 'seq') {
      this.seq = ev.seq;
      return;
    }
    this.seq++;
    if (ev.type === 'run') {
      this.runs[ev.run] = {
        run: ev.run,
        label: ev.label,
        dir: ev.dir,
        live: ev.live,
        followed: ev.followed ?? false,
        header: null,
        status: 'running',
        train: emptyTrain(),
        valid: emptyValid(),
        skipped: [],
        layers: 0,
        experts: 0,
        diagnosis: new RunDiagnosis(),
      };
      return;
    }
    const d = this.runs[ev.run];
    if (!d) return;
    if (ev.type === 'header') {
      d.header = ev.header;
      d.diagnosis.header(ev.header);
    } else if (ev.type === 'status') {
      d.status = ev.status;
      d.message = ev.message;
    } else if (ev.type === 'reset') {
      d.train = emptyTrain();
      d.valid = emptyValid();
      d.skipped = [];
      // The header comes again after a reset (a resume's history, or a log read again).
      d.diagnosis.reset(null);
    } else {
      if (ev.record.kind === 'train') appendTrain(d, ev.record);
      else appendValid(d, ev.record);
      d.diagnosis.record(ev.record);
    }
  }

  /** Columns of per-layer / per-head groups padded to the step count (a layer may start late). */
  trainOf(run: number): TrainColumns {
    const t = this.runs[run]!.train;
    const n = t.step.length;
    padded(t.head, n);
    padded(t.entropy, n);
    padded(t.maxShare, n);
    padded(t.switchLoss, n);
    for (const l of t.load) padded(l ?? [], n);
    return t;
  }

  validOf(run: number): ValidColumns {
    const v = this.runs[run]!.valid;
    padded(v.mse, v.step.length);
    padded(v.mae, v.step.length);
    return v;
  }

  lastStep(run: number): number | null {
    const s = this.runs[run]?.train.step;
    return s && s.length ? s[s.length - 1]! : null;
  }
}
