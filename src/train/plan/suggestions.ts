/**
 * What to change when a plan does not fit: each suggestion is found by planning the changed config
 * on the meta runtime (planPeak), so it names a knob that really helps, with the peak it gives.
 * A buffer over the target's per-binding limit is answered by the knob that shrinks that buffer:
 * batch and context for activations, the model's width for a parameter.
 */
import type { LimitViolation } from '../../kernels/meta-runtime.ts';
import type { TrainConfig } from '../config.ts';
import { planPeak, usableBytes, fmtGiB, type PlanBuffer } from './simulate.ts';
import type { TargetProfile } from './targets.ts';

export interface Suggestion {
  /** The config assignments, as `--set` takes them. */
  set: string[];
  /** Planned peak with them applied. */
  peakBytes: number;
  text: string;
}

type Edit = (c: TrainConfig) => void;

function edited(cfg: TrainConfig, ...edits: Edit[]): TrainConfig {
  const c = structuredClone(cfg);
  for (const e of edits) e(c);
  return c;
}

/** Largest v in [lo, hi] with ok(v), for ok monotone (true then false); lo - 1 when none. */
function largest(lo: number, hi: number, ok: (v: number) => boolean): number {
  if (hi < lo || !ok(lo)) return lo - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

interface Probe {
  peakBytes: number;
  violations: LimitViolation[];
  largest: PlanBuffer;
}

export function suggest(cfg: TrainConfig, opts: { target: TargetProfile; budgetBytes?: number; reserveBytes?: number }, current: Probe): Suggestion[] {
  const usable = usableBytes(opts.target, opts);
  const memo = new Map<string, Probe>();
  const probe = (c: TrainConfig): Probe => {
    const key = JSON.stringify([c.model, c.schedule, c.data.contextLength, c.precision.activations]);
    let p = memo.get(key);
    if (!p) memo.set(key, (p = planPeak(c, opts.target)));
    return p;
  };
  const fits = (c: TrainConfig) => {
    const p = probe(c);
    return p.peakBytes <= usable && p.violations.length === 0;
  };
  const out: Suggestion[] = [];
  const add = (set: string[], c: TrainConfig, why: string) => {
    const p = probe(c);
    out.push({ set, peakBytes: p.peakBytes, text: `${why}: ${set.map((s) => `--set ${s}`).join(' ')} (peak ${fmtGiB(p.peakBytes)})` });
  };

  const s = cfg.schedule;
  const windows = s.microBatch * s.accumulation;
  // Micro-batch, with accumulation raised to keep (at least) the windows per optimizer step.
  const withBatch =
    (mb: number): Edit =>
    (c) => {
      c.schedule.microBatch = mb;
      c.schedule.accumulation = Math.ceil(windows / mb);
    };
  const batchSet = (mb: number) => [
    `schedule.microBatch=${mb}`,
    ...(Math.ceil(windows / mb) !== s.accumulation ? [`schedule.accumulation=${Math.ceil(windows / mb)}`] : []),
  ];
  if (s.microBatch > 1) {
    const mb = largest(1, s.microBatch - 1, (v) => fits(edited(cfg, withBatch(v))));
    if (mb >= 1)
      add(batchSet(mb), edited(cfg, withBatch(mb)), `micro-batch ${s.microBatch} -> ${mb}, accumulation keeps ${windows} windows per optimizer step`);
  }
  if (!s.recompute) {
    const on: Edit = (c) => (c.schedule.recompute = true);
    if (fits(edited(cfg, on))) add(['schedule.recompute=true'], edited(cfg, on), 'recompute each decoder layer in backward');
    else if (s.microBatch > 1) {
      const mb = largest(1, s.microBatch - 1, (v) => fits(edited(cfg, on, withBatch(v))));
      if (mb >= 1) add(['schedule.recompute=true', ...batchSet(mb)], edited(cfg, on, withBatch(mb)), `recompute + micro-batch ${mb}`);
    }
  }
  if (cfg.precision.activations === 'f32' && opts.target.caps.f16) {
    const half: Edit = (c) => (c.precision.activations = 'f16');
    if (fits(edited(cfg, half))) add(['precision.activations=f16'], edited(cfg, half), 'f16 activations (f32 master weights and AdamW)');
  }
  const longest = cfg.model.task === 'forecast' ? Math.max(...cfg.model.horizons) : 1;
  const T = cfg.data.contextLength;
  if (T > longest) {
    const step = T > 64 ? 64 : 1;
    const lo = Math.ceil(longest / step);
    const units = largest(lo, Math.floor((T - 1) / step), (u) => fits(edited(cfg, (c) => (c.data.contextLength = u * step))));
    if (units >= lo)
      add(
        [`data.contextLength=${units * step}`],
        edited(cfg, (c) => (c.data.contextLength = units * step)),
        `context ${T} -> ${units * step}`,
      );
  }
  if (current.violations.some((v) => v.limit !== 'maxComputeWorkgroupsPerDimension')) widthSuggestion(cfg, current, probe, fits, add);
  // The optimizer state off the card: what a model whose weights, gradients and moments alone
  // exceed the card needs (the 2.4B Time-MoE on a 3090).
  if (cfg.optim.offload === 'none') {
    const offload: Edit = (c) => {
      c.optim.offload = 'host';
      c.logging.metricsEvery = 1;
      if (opts.target.caps.f16) c.precision.activations = 'f16';
      c.schedule.recompute = true;
    };
    const set = ['optim.offload=host', 'logging.metricsEvery=1', ...(opts.target.caps.f16 ? ['precision.activations=f16'] : []), 'schedule.recompute=true'];
    if (fits(edited(cfg, offload))) add(set, edited(cfg, offload), 'AdamW state and master weights in host memory (f16 working weights on the card)');
    else if (s.microBatch > 1) {
      const mb = largest(1, s.microBatch - 1, (v) => fits(edited(cfg, offload, withBatch(v))));
      if (mb >= 1) add([...set, ...batchSet(mb)], edited(cfg, offload, withBatch(mb)), `optimizer offloaded to the host + micro-batch ${mb}`);
    }
  }
  if (out.length === 0) {
    const smallest = probe(
      edited(
        cfg,
        withBatch(1),
        (c) => (c.schedule.recompute = true),
        (c) => (c.data.contextLength = Math.min(T, Math.max(longest, 64))),
      ),
    );
    out.push({
      set: [],
      peakBytes: smallest.peakBytes,
      text:
        smallest.violations.length > 0
          ? `nothing in batch, context or recompute helps: ${describe(smallest.violations[0]!)} — a smaller model or another --target is needed`
          : `does not fit at any batch or context: weights, AdamW state and one window need ${fmtGiB(smallest.peakBytes)} of ${fmtGiB(usable)} usable — a smaller model or a card with more memory (--target)`,
    });
  }
  return out;
}

export function describe(v: LimitViolation): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  switch (v.limit) {
    case 'maxStorageBufferBindingSize':
      return `${v.subject} (${mib(v.value)}, bound by ${v.kernel ?? 'a kernel'}) is over the ${mib(v.max)} per-binding limit`;
    case 'maxBufferSize':
      return `buffer ${v.subject} is ${mib(v.value)}, over the ${mib(v.max)} buffer-size limit`;
    case 'maxComputeWorkgroupsPerDimension':
      return `kernel ${v.subject} needs ${v.value} workgroups in one dimension, over ${v.max}`;
  }
}

/**
 * A parameter over the per-binding limit: batch and context do not change it, only the width of
 * the projection it belongs to does. Found by planning smaller widths.
 */
function widthSuggestion(
  cfg: TrainConfig,
  current: Probe,
  probe: (c: TrainConfig) => Probe,
  fits: (c: TrainConfig) => boolean,
  add: (set: string[], c: TrainConfig, why: string) => void,
): void {
  const big = current.largest;
  if (big.region !== 'setup') return;
  const m = cfg.model;
  const knob: 'moeIntermediate' | 'sharedIntermediate' | 'hidden' = /\.experts\./.test(big.label)
    ? 'moeIntermediate'
    : /shared_expert\./.test(big.label)
      ? 'sharedIntermediate'
      : 'hidden';
  const step = knob === 'hidden' ? 2 * m.heads : 64;
  const set =
    (v: number): Edit =>
    (c) => {
      c.model[knob] = v;
      c.model.preset = 'custom';
    };
  const clear = (v: number) => probe(edited(cfg, set(v))).violations.every((x) => x.limit === 'maxComputeWorkgroupsPerDimension');
  const units = largest(1, Math.floor((m[knob] - 1) / step), (u) => clear(u * step));
  if (units < 1) return;
  const v = units * step;
  const c = edited(cfg, set(v));
  const before = cfg.model[knob];
  add(
    [`model.${knob}=${v}`],
    c,
    `${big.label} (${(big.bytes / 2 ** 20).toFixed(0)} MiB) is a parameter: batch and context cannot shrink it; model.${knob} ${before} -> ${v} brings every buffer under the limit${fits(c) ? '' : ' (memory still needs one of the changes above)'}`,
  );
}
