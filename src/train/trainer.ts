/**
 * One optimizer step: micro-steps of forward + loss + backward (gradients accumulate), guards,
 * global-norm clip and AdamW, all recorded on the GPU; then one readback of the step's metrics.
 * Data flows one way: batch -> model -> loss -> backward -> guards -> clip -> AdamW -> metrics.
 */
import type { Runtime } from '../kernels/runtime.ts';
import type { Tensor } from '../kernels/tensor.ts';
import { Graph } from '../autograd/graph.ts';
import { Var } from '../autograd/variable.ts';
import { zeroGrad } from '../autograd/grad.ts';
import { expertColumnStats, routerStats, switchLoss } from '../kernels/moe-loss.ts';
import { axpy, copy } from '../kernels/elementwise.ts';
import type { TimeMoeModel } from '../model/time-moe.ts';
import type { LossTerms } from '../model/losses.ts';
import type { AdamW } from '../optim/adamw.ts';
import { globalNormClip } from '../optim/clip.ts';
import { CLIP } from '../kernels/adamw.ts';
import { auxFactor, learningRate } from '../optim/schedule.ts';
import { ConfigError, type TrainConfig } from './config.ts';
import { taskLoss, uploadBatch, type Batch } from './batch.ts';
import { GuardBatch, type BadTensor } from './guards.ts';
import { LossScaler } from '../optim/loss-scale.ts';
import { adamScalars, createTrainState, lossSeed, SCALE_EVENTS, stepEnd, STATE, type ScaleEvent } from '../kernels/train-state.ts';
import type { Parameter } from '../model/parameter.ts';

export interface LayerRoutingMetrics {
  layer: number;
  /** Fraction of the top-k picks per expert (balanced = 1/E each). */
  load: number[];
  /** Mean router entropy in nats (uniform = ln E). */
  entropy: number;
  /** Largest expert share. */
  maxShare: number;
  /** Token-expert pairs dropped by the capacity limit. */
  dropped: number;
  /** This layer's Switch balancing loss E·Σ f_i P_i (balanced = 1), whatever aux convention trains. */
  switchLoss: number;
}

export interface StepMetrics {
  step: number;
  /** Micro-steps in this optimizer step (gradient accumulation). */
  microSteps: number;
  /** Micro-steps since the start of training (optimizer steps x accumulation). */
  microStep: number;
  loss: number;
  lossMain: number;
  headLosses: number[];
  aux: number;
  z: number;
  lr: number;
  auxFactor: number;
  gradNorm: number;
  gradNormPostClip: number;
  clipCoef: number;
  clippedFraction: number;
  skipped: boolean;
  /** The loss scale this step's backward was seeded with (1 with f32 activations). */
  lossScale: number;
  /**
   * The step was skipped because the scaled gradients overflowed (f16 activations): the scale is
   * halved and the step is not counted as a bad step. Overflows at the minimum scale count as bad.
   */
  overflow: boolean;
  /** What the loss scaler did after this step. */
  scaleEvent: ScaleEvent;
  /** Non-finite tensors in forward order (empty on a good step). */
  nonFinite: BadTensor[];
  routing: LayerRoutingMetrics[];
  tokens: number;
  ms: number;
  /** Queue submits this step took (the goal is <= 3). */
  submits: number;
  liveBytes: number;
  peakBytes: number;
}


/** A step recorded and submitted, its metrics not read yet (Trainer.record / resolve). */
export interface PendingStep {
  step: number;
  micro: number;
  tokens: number;
  lr: number;
  auxFactor: number;
  t0: number;
  submits: number;
  readback: Promise<(Float32Array | Int32Array | Uint32Array)[]>;
  /** Head-loss count per micro-step (layout of the readback). */
  heads: number[];
  guards: GuardBatch[];
  /** Routed layers per micro-step and their layer numbers. */
  layers: number[];
  routeLayers: number[];
  /** Parameters whose gradients were kept for naming a bad gradient (keepGrads). */
  params: Parameter[] | null;
}

export class Trainer {
  /** Dynamic loss scaling, with f16 activations only (a host mirror of the GPU state). */
  readonly scaler: LossScaler | null;
  /** GPU-resident [adamStep, lossScale, goodSteps, event] (kernels/train-state.ts). */
  readonly state: Tensor;

  constructor(
    readonly rt: Runtime,
    readonly model: TimeMoeModel,
    readonly optimizer: AdamW,
    readonly cfg: TrainConfig,
  ) {
    const p = cfg.precision;
    if (p.activations === 'f16' && !rt.gpu.features.f16) {
      // A config problem for this machine: the CLI reports it and exits 2.
      throw new ConfigError(`precision.activations is 'f16' but this adapter (${rt.gpu.adapter.description || rt.gpu.adapter.device}) has no shader-f16 feature: set precision.activations to 'f32'`);
    }
    this.scaler = p.activations === 'f16' ? new LossScaler({ initialScale: p.initialScale, growthInterval: p.growthInterval, minScale: p.minScale }) : null;
    this.state = createTrainState(rt, { adamStep: optimizer.step, lossScale: this.scaler?.scale ?? 1, goodSteps: 0 });
  }

  lossOptions(step: number) {
    const l = this.cfg.loss;
    return {
      auxFactor: auxFactor(l, step),
      auxConvention: l.auxConvention,
      zCoef: l.zCoef,
      experts: this.model.cfg.experts,
      topK: this.model.cfg.topK,
      huberDelta: l.huberDelta,
    };
  }

  /** Run optimizer step `step` (1-based) over the given micro-batches and read its metrics. */
  async step(step: number, micro: readonly Batch[]): Promise<StepMetrics> {
    return this.resolve(this.record(step, micro, { keepGrads: true }));
  }

  /** Steps recorded and submitted whose metrics were not read yet. */
  pending = 0;

  /**
   * Record and submit optimizer step `step` without waiting for it: its metrics come back through
   * resolve(). Steps may be recorded several ahead of their resolve (logging.metricsEvery): the
   * AdamW step count and the loss scale live on the GPU (kernels/train-state.ts), so nothing in
   * the next step depends on this step's readback. `keepGrads` keeps the gradients until
   * resolve(), which can then name a gradient that went non-finite.
   */
  record(step: number, micro: readonly Batch[], opts: { keepGrads?: boolean } = {}): PendingStep {
    const { rt, model, cfg } = this;
    const t0 = performance.now();
    const submits0 = rt.recorder.submits;
    if (this.pending === 0) rt.pool.resetPeak();
    const lossOpts = this.lossOptions(step);
    const lr = learningRate({ ...cfg.optim, ...cfg.schedule }, step);
    const fault = cfg.stability.injectNan;
    const faulty = fault && step >= fault.step && step <= (fault.untilStep ?? fault.step);
    const inject = faulty && fault.site !== 'grad' ? { layer: fault.layer, site: fault.site } : null;

    // Every host write happens before any work is recorded: a write after recorded work would
    // force an extra submit (see Runtime.write). With no step in flight the host's copy of the
    // optimizer step and loss scale is current (it may have been restored or set): push it.
    model.prepare(micro[0]!.T);
    if (this.pending === 0) rt.write(this.state, [this.optimizer.step, this.scaler?.scale ?? 1, this.scaler?.goodSteps ?? 0, 0]);
    const devs = micro.map((mb) => uploadBatch(rt, mb, model));
    const stateBefore = copy(this.state, 'train state before');
    const seeds = micro.map(() => lossSeed(this.state, micro.length));
    const guards: GuardBatch[] = [];
    const graphs: Graph[] = [];
    const kept: LossTerms[] = [];
    const routeStats: { layer: number; stats: Tensor; switchLoss: Tensor; dropped: Tensor }[][] = [];
    let tokens = 0;

    micro.forEach((mb, i) => {
      const g = new Graph();
      const dev = devs[i]!;
      const x = g.adopt(new Var(dev.inputs, false, 'inputs'));
      const { out, terms } = g.run(() => {
        const out = model.forward(x, { batch: mb.B, seqLen: mb.T }, { injectNan: inject, recompute: cfg.schedule.recompute, activations: cfg.precision.activations });
        return { out, terms: taskLoss(out, dev, lossOpts) };
      });
      for (const v of [terms.total, terms.main, terms.aux, terms.z, ...terms.headLosses]) g.keep(v);
      if (cfg.stability.guards) {
        guards.push(
          new GuardBatch([
            ...out.taps.map((t) => ({ name: `model.layers.${t.layer}.${t.site}`, layer: t.layer, tensor: t.v.data })),
            { name: 'loss.total', layer: -1, tensor: terms.total.data },
          ]),
        );
      }
      // The plan belongs to the graph (freed during backward): copy its dropped count out first.
      routeStats.push(
        out.routing.map((r) => {
          const cols = expertColumnStats(r.probs.data, r.idx);
          const sw = switchLoss(r.probs.data, r.idx, cols);
          sw.coef.dispose();
          const stats = routerStats(r.probs.data, r.idx, cols);
          cols.dispose();
          return { layer: r.layer, stats, switchLoss: sw.loss, dropped: copy(r.dropped, 'dropped') };
        }),
      );
      // Mean over micro-steps: each backward is seeded with lossScale/accumulation (on the GPU).
      g.backward(terms.total, seeds[i]!);
      dev.dispose();
      graphs.push(g);
      kept.push(terms);
      tokens += mb.B * mb.T;
    });

    const params = model.params.filter((p) => p.grad);
    const grads = params.map((p) => p.grad!);
    if (faulty && fault.site === 'grad') {
      // Fault injection into a gradient (a NaN born in backward): the first parameter of that layer.
      const p = params.find((q) => q.layer === fault.layer);
      if (p) rt.fill(p.grad!, NaN);
    }
    // The norm and clip are of the unscaled gradients: the scale is read from the GPU state.
    const clip = globalNormClip(grads, cfg.optim.clipNorm, this.state);
    const guardFlag = rt.zeros([1], 'f32', 'guard flag');
    for (const gb of guards) gb.addTo(guardFlag);
    // Any NaN/Inf in any gradient makes the global norm non-finite: that flag covers every
    // gradient without a separate pass over them (and is the loss scaler's overflow signal).
    // Which gradient it was is looked up only on a bad step that no forward tensor explains.
    const normBad = rt.zeros([1], 'f32', 'norm non-finite');
    if (cfg.stability.guards || this.scaler) rt.recorder.copy(clip.buffer, CLIP.nonFinite * 4, normBad.buffer, 0, 4);
    const skip = copy(guardFlag, 'skip flag');
    axpy(normBad, skip, 1, 1);
    // Bias correction from the GPU step count. The clip tensor always goes in: its gradScale is
    // the clip coefficient over the loss scale.
    const scalars = adamScalars(this.state, { lr, beta1: cfg.optim.beta1, beta2: cfg.optim.beta2 });
    this.optimizer.apply(lr, clip, skip, this.optimizer.step + 1, scalars);
    const p = cfg.precision;
    stepEnd(this.state, guardFlag, normBad, this.scaler ? { minScale: p.minScale, maxScale: this.scaler.maxScale, growthInterval: p.growthInterval } : null);
    const stateAfter = copy(this.state, 'train state after');

    // The step's metrics join the step's own submit: one submit, one map, per optimizer step.
    const lossTensors = kept.flatMap((t) => [t.total, t.main, t.aux, t.z, ...t.headLosses].map((v) => v.data));
    const routeTensors = routeStats.flatMap((layers) => layers.flatMap((l) => [l.stats, l.switchLoss, l.dropped]));
    const readback = rt.readMany([clip, stateBefore, stateAfter, ...lossTensors, ...guards.map((gb) => gb.stats), ...routeTensors]);
    // Everything read is now copied to staging in the submitted work: free the GPU side at once
    // (queue order keeps the buffers alive for that work).
    for (const g of graphs) g.dispose();
    for (const gb of guards) gb.dispose();
    for (const layers of routeStats)
      for (const l of layers) {
        l.stats.dispose();
        l.switchLoss.dispose();
        l.dropped.dispose();
      }
    for (const t of [clip, guardFlag, normBad, skip, scalars, stateBefore, stateAfter, ...seeds]) t.dispose();
    // Free the gradients: the next backward's first gradient becomes the buffer, which saves a
    // zero-fill and an add per parameter per step.
    if (!opts.keepGrads) zeroGrad(model.params, true);
    this.pending++;
    return {
      step,
      micro: micro.length,
      tokens,
      lr,
      auxFactor: lossOpts.auxFactor,
      t0,
      submits: rt.recorder.submits - submits0,
      readback,
      heads: kept.map((t) => t.headLosses.length),
      guards,
      layers: routeStats.map((l) => l.length),
      routeLayers: routeStats[0]?.map((l) => l.layer) ?? [],
      params: opts.keepGrads ? params : null,
    };
  }

  /** Wait for a recorded step's metrics (in recording order) and update the host's mirrors. */
  async resolve(ps: PendingStep): Promise<StepMetrics> {
    const { rt, model, cfg } = this;
    const all = await ps.readback;
    this.pending--;
    const clipV = all[0] as Float32Array;
    const before = all[1] as Float32Array;
    const after = all[2] as Float32Array;
    let at = 3;
    const terms = ps.heads.map((h) => {
      const v = all.slice(at, at + 4 + h).map((a) => a[0]!);
      at += 4 + h;
      return { total: v[0]!, main: v[1]!, aux: v[2]!, z: v[3]!, heads: v.slice(4) };
    });
    const bad = ps.guards.flatMap((gb) => gb.parse(all[at++] as Float32Array));
    const skipped = after[STATE.adamStep] === before[STATE.adamStep];
    const scaleEvent: ScaleEvent = SCALE_EVENTS[after[STATE.event]!] ?? 'none';
    // The GPU state is the truth; the host keeps a mirror for checkpoints and the next push.
    this.optimizer.step = after[STATE.adamStep]!;
    if (this.scaler) this.scaler.restore({ scale: after[STATE.lossScale]!, goodSteps: after[STATE.goodSteps]! });
    if (skipped && bad.length === 0 && cfg.stability.guards && ps.params) {
      // The non-finite value was born in backward: name the gradient (one extra pass, bad steps only).
      const gradGuard = new GuardBatch(ps.params.map((p) => ({ name: `${p.name}.grad`, layer: p.layer, tensor: p.grad! })));
      bad.push(...(await gradGuard.read()));
      gradGuard.dispose();
    }
    if (ps.params) zeroGrad(model.params, true);
    const routing = ps.layers.map((n) => Array.from({ length: n }, (_, li) => ({ layer: ps.routeLayers[li]!, s: all[at++] as Float32Array, sw: all[at++]![0]!, dropped: all[at++]![0]! })));

    const mean = (f: (t: (typeof terms)[number]) => number) => terms.reduce((a, t) => a + f(t), 0) / terms.length;
    const E = model.cfg.experts;
    const routingMetrics: LayerRoutingMetrics[] = routing[0]!.map((l0, li) => {
      const load = Array.from({ length: E }, (_, e) => routing.reduce((a, mb) => a + mb[li]!.s[e]!, 0) / routing.length);
      return {
        layer: l0.layer,
        load,
        entropy: routing.reduce((a, mb) => a + mb[li]!.s[E]!, 0) / routing.length,
        maxShare: Math.max(...load),
        dropped: routing.reduce((a, mb) => a + mb[li]!.dropped, 0),
        switchLoss: routing.reduce((a, mb) => a + mb[li]!.sw, 0) / routing.length,
      };
    });
    const mem = rt.memory();
    const norm = clipV[CLIP.norm]!;
    const coef = cfg.optim.clipNorm > 0 ? clipV[CLIP.coef]! : 1;
    return {
      step: ps.step,
      microSteps: ps.micro,
      microStep: ps.step * ps.micro,
      loss: mean((t) => t.total),
      lossMain: mean((t) => t.main),
      headLosses: terms[0]!.heads.map((_, i) => mean((t) => t.heads[i]!)),
      aux: mean((t) => t.aux),
      z: mean((t) => t.z),
      lr: ps.lr,
      auxFactor: ps.auxFactor,
      gradNorm: norm,
      gradNormPostClip: norm * coef,
      clipCoef: coef,
      clippedFraction: 1 - coef,
      skipped,
      lossScale: before[STATE.lossScale]!,
      overflow: scaleEvent === 'overflow',
      scaleEvent,
      nonFinite: bad,
      routing: routingMetrics,
      tokens: ps.tokens,
      ms: performance.now() - ps.t0,
      submits: ps.submits,
      liveBytes: mem.liveBytes,
      peakBytes: mem.peakLiveBytes,
    };
  }

  dispose(): void {
    this.state.dispose();
  }
}
