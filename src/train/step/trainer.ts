/**
 * One optimizer step: micro-steps of forward + loss + backward (gradients accumulate), guards,
 * global-norm clip and AdamW, all recorded on the GPU; then one readback of the step's metrics.
 * Data flows one way: batch -> model -> loss -> backward -> guards -> clip -> AdamW -> metrics.
 */
import type { Backend } from '../../kernels/tensor.ts';
import type { Tensor } from '../../kernels/tensor.ts';
import { Readback, decode, type Field, type ReadValues } from './readback.ts';
import { Graph } from '../../autograd/graph.ts';
import { Var } from '../../autograd/variable.ts';
import { zeroGrad } from '../../autograd/grad.ts';
import { expertColumnStats, routerStats, switchLoss } from '../../kernels/moe-loss.ts';
import { axpy, copy } from '../../kernels/elementwise.ts';
import type { TimeMoeModel } from '../../model/time-moe.ts';
import type { LossOptions, LossTerms } from '../../model/losses.ts';
import type { TapSite } from '../../model/layers/decoder-layer.ts';
import type { StepOptimizer } from '../../optim/step-optimizer.ts';
import { globalNormClip } from '../../optim/clip.ts';
import { CLIP } from '../../kernels/adamw.ts';
import { auxFactor, learningRate } from '../../optim/schedule.ts';
import { ConfigError, type TrainConfig } from '../config.ts';
import { taskLoss, uploadBatch, type Batch, type DeviceBatch } from './batch.ts';
import { GuardBatch, type BadTensor } from './guards.ts';
import { LossScaler } from '../../optim/loss-scale.ts';
import { adamScalars, createTrainState, lossSeed, SCALE_EVENTS, stepEnd, STATE, type ScaleEvent } from '../../kernels/train-state.ts';
import type { Parameter } from '../../model/parameter.ts';

/**
 * A layer's routing statistics. On a step whose forward was not finite (a skipped bad step, or a
 * non-finite loss with the guards off) they are null: the top-k of NaN logits picks arbitrary
 * experts, so a distribution read from them would be made up (docs/FORMATS.md). An overflow skip
 * (f16: only the scaled gradients overflowed) keeps them: its forward was finite.
 */
export interface LayerRoutingMetrics {
  layer: number;
  /** Fraction of the top-k picks per expert (balanced = 1/E each). */
  load: number[] | null;
  /** Mean router entropy in nats (uniform = ln E). */
  entropy: number | null;
  /** Largest expert share. */
  maxShare: number | null;
  /** Token-expert pairs dropped by the capacity limit. */
  dropped: number | null;
  /** This layer's Switch balancing loss E·Σ f_i P_i (balanced = 1), whatever aux convention trains. */
  switchLoss: number | null;
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

/** One micro-batch after its forward: the graph (backward runs on it), losses, guard stats and routing metrics. */
interface MicroForward {
  graph: Graph;
  terms: LossTerms;
  guard: GuardBatch | null;
  route: { layer: number; stats: Tensor; switchLoss: Tensor; dropped: Tensor }[];
}

/** The loss terms of one micro-step, as fields of the readback. */
interface LossFields {
  total: Field<number>;
  main: Field<number>;
  aux: Field<number>;
  z: Field<number>;
  heads: Field<number>[];
}

/** Routing statistics of one layer of one micro-step. */
interface RouteFields {
  layer: number;
  /** [E + 2]: load per expert, entropy, max share (kernels/moe-loss.ts routerStats). */
  stats: Field<Float32Array>;
  switchLoss: Field<number>;
  dropped: Field<number>;
}

/** Everything a step reads back, by name. */
interface StepFields {
  clip: Field<Float32Array>;
  stateBefore: Field<Float32Array>;
  stateAfter: Field<Float32Array>;
  losses: LossFields[];
  /** Per micro-step (guards on): the guard statistics rows. */
  guards: Field<Float32Array>[];
  routing: RouteFields[][];
}

/** What the update leaves for the metrics readback. */
interface StepUpdate {
  clip: Tensor;
  stateAfter: Tensor;
  /** The parameters that had gradients this step. */
  params: Parameter[];
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
  readback: Promise<ReadValues>;
  /** The fields of the readback. */
  fields: StepFields;
  guards: GuardBatch[];
  /** Parameters whose gradients were kept for naming a bad gradient (keepGrads). */
  params: Parameter[] | null;
}

export class Trainer {
  /** Dynamic loss scaling, with f16 activations only (a host mirror of the GPU state). */
  readonly scaler: LossScaler | null;
  /** GPU-resident [adamStep, lossScale, goodSteps, event] (kernels/train-state.ts). */
  readonly state: Tensor;

  constructor(
    readonly rt: Backend,
    readonly model: TimeMoeModel,
    /** The GPU AdamW, or the host one (optim.offload "host"): the update then runs in resolve(). */
    readonly optimizer: StepOptimizer,
    readonly cfg: TrainConfig,
  ) {
    const p = cfg.precision;
    if (p.activations === 'f16' && !rt.caps.f16) {
      // A config problem for this machine: the CLI reports it and exits 2.
      throw new ConfigError(
        `this device has no shader-f16: precision.activations=f16 stores activations in f16, which ${rt.caps.adapter.device || rt.caps.adapter.description} cannot; use precision.activations=f32`,
      );
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
    // The host update reads the gradients after the step's readback: they must outlive record().
    if (this.optimizer.updatesAfterReadback) opts = { ...opts, keepGrads: true };
    const t0 = performance.now();
    const submits0 = rt.counters.submits;
    if (this.pending === 0) rt.resetPeak();
    const lossOpts = this.lossOptions(step);
    const lr = learningRate({ ...cfg.optim, ...cfg.schedule }, step);
    const fault = cfg.stability.injectNan;
    const faulty = !!fault && step >= fault.step && step <= (fault.untilStep ?? fault.step);

    // The stages run inside named regions: the meta runtime attributes their bytes to them (the
    // memory plan's categories), and the order is the step's data flow.
    const inputs = rt.region('inputs', () => this.uploadStep(micro));
    const micros = micro.map((mb, i) => {
      const f = rt.region('forward', () =>
        this.forwardMicro(mb, inputs.devs[i]!, lossOpts, faulty && fault.site !== 'grad' ? { layer: fault.layer, site: fault.site } : null),
      );
      rt.region('backward', () => {
        // Mean over micro-steps: each backward is seeded with lossScale/accumulation (on the GPU).
        f.graph.backward(f.terms.total, inputs.seeds[i]!);
        inputs.devs[i]!.dispose();
      });
      return f;
    });
    const upd = rt.region('update', () => this.update(lr, micros, faulty && fault.site === 'grad' ? fault.layer : null));
    const { readback, fields } = rt.region('metrics', () => this.readMetrics(inputs.stateBefore, upd, micros));
    for (const t of [...inputs.seeds, inputs.stateBefore]) t.dispose();
    // Free the gradients: the next backward's first gradient becomes the buffer, which saves a
    // zero-fill and an add per parameter per step.
    if (!opts.keepGrads) zeroGrad(model.params, true);
    this.pending++;
    return {
      step,
      micro: micro.length,
      tokens: micro.reduce((a, mb) => a + mb.B * mb.T, 0),
      lr,
      auxFactor: lossOpts.auxFactor,
      t0,
      submits: rt.counters.submits - submits0,
      readback,
      fields,
      guards: micros.flatMap((f) => (f.guard ? [f.guard] : [])),
      params: opts.keepGrads ? upd.params : null,
    };
  }

  /**
   * Host writes first, before any work is recorded: a write after recorded work would force an
   * extra submit (see Backend.write). With no step in flight the host's copy of the optimizer step
   * and loss scale is current (it may have been restored or set): push it.
   */
  private uploadStep(micro: readonly Batch[]): { devs: DeviceBatch[]; stateBefore: Tensor; seeds: Tensor[] } {
    const { rt, model } = this;
    model.prepare(micro[0]!.T);
    if (this.pending === 0) rt.write(this.state, [this.optimizer.step, this.scaler?.scale ?? 1, this.scaler?.goodSteps ?? 0, 0]);
    const devs = micro.map((mb) => uploadBatch(rt, mb, model));
    const stateBefore = copy(this.state, 'train state before');
    const seeds = micro.map(() => lossSeed(this.state, micro.length));
    return { devs, stateBefore, seeds };
  }

  /** Forward and losses of one micro-batch, with the guard statistics and routing metrics of its activations. */
  private forwardMicro(mb: Batch, dev: DeviceBatch, lossOpts: LossOptions, inject: { layer: number; site: TapSite } | null): MicroForward {
    const { model, cfg } = this;
    const g = new Graph();
    const x = g.adopt(new Var(dev.inputs, false, 'inputs'));
    const { out, terms } = g.run(() => {
      const out = model.forward(
        x,
        { batch: mb.B, seqLen: mb.T },
        { injectNan: inject, recompute: cfg.schedule.recompute, activations: cfg.precision.activations },
      );
      return { out, terms: taskLoss(out, dev, lossOpts) };
    });
    for (const v of [terms.total, terms.main, terms.aux, terms.z, ...terms.headLosses]) g.keep(v);
    const guard = cfg.stability.guards
      ? new GuardBatch([
          ...out.taps.map((t) => ({ name: `model.layers.${t.layer}.${t.site}`, layer: t.layer, tensor: t.v.data })),
          { name: 'loss.total', layer: -1, tensor: terms.total.data },
        ])
      : null;
    // The plan belongs to the graph (freed during backward): copy its dropped count out first.
    const route = out.routing.map((r) => {
      const cols = expertColumnStats(r.probs.data, r.idx);
      const sw = switchLoss(r.probs.data, r.idx, cols);
      sw.coef.dispose();
      const stats = routerStats(r.probs.data, r.idx, cols);
      cols.dispose();
      return { layer: r.layer, stats, switchLoss: sw.loss, dropped: copy(r.dropped, 'dropped') };
    });
    return { graph: g, terms, guard, route };
  }

  /**
   * Guards, global-norm clip and AdamW on the GPU: a bad step (non-finite activation, loss or
   * gradient) sets the skip flag and leaves weights and optimizer state untouched.
   */
  private update(lr: number, micros: readonly MicroForward[], gradFaultLayer: number | null): StepUpdate {
    const { rt, model, cfg } = this;
    const params = model.params.filter((p) => p.grad);
    const grads = params.map((p) => p.grad!);
    if (gradFaultLayer !== null) {
      // Fault injection into a gradient (a NaN born in backward): the first parameter of that layer.
      const p = params.find((q) => q.layer === gradFaultLayer);
      if (p) rt.fill(p.grad!, NaN);
    }
    // The norm and clip are of the unscaled gradients: the scale is read from the GPU state.
    const clip = globalNormClip(grads, cfg.optim.clipNorm, this.state);
    const guardFlag = rt.zeros([1], 'f32', 'guard flag');
    for (const f of micros) f.guard?.addTo(guardFlag);
    // Any NaN/Inf in any gradient makes the global norm non-finite: that flag covers every
    // gradient without a separate pass over them (and is the loss scaler's overflow signal).
    // Which gradient it was is looked up only on a bad step that no forward tensor explains.
    const normBad = rt.zeros([1], 'f32', 'norm non-finite');
    if (cfg.stability.guards || this.scaler) rt.copy(clip, normBad, { srcOffset: CLIP.nonFinite * 4, bytes: 4 });
    const skip = copy(guardFlag, 'skip flag');
    axpy(normBad, skip, 1, 1);
    // Bias correction from the GPU step count. The clip tensor always goes in: its gradScale is
    // the clip coefficient over the loss scale.
    const scalars = adamScalars(this.state, { lr, beta1: cfg.optim.beta1, beta2: cfg.optim.beta2 });
    // The host AdamW records nothing: it updates after the readback says the step is good (resolve).
    this.optimizer.recordUpdate(lr, clip, skip, scalars);
    const p = cfg.precision;
    stepEnd(this.state, guardFlag, normBad, this.scaler ? { minScale: p.minScale, maxScale: this.scaler.maxScale, growthInterval: p.growthInterval } : null);
    for (const t of [guardFlag, normBad, skip, scalars]) t.dispose();
    return { clip, stateAfter: copy(this.state, 'train state after'), params };
  }

  /**
   * The step's metrics join the step's own submit: one submit, one map, per optimizer step. What
   * is read is copied to staging in the submitted work, so the GPU side is freed at once (queue
   * order keeps the buffers alive for that work).
   */
  private readMetrics(stateBefore: Tensor, upd: StepUpdate, micros: readonly MicroForward[]): { readback: Promise<ReadValues>; fields: StepFields } {
    const rb = new Readback();
    const fields: StepFields = {
      clip: rb.add('clip', upd.clip, decode.f32),
      stateBefore: rb.add('train state before', stateBefore, decode.f32),
      stateAfter: rb.add('train state after', upd.stateAfter, decode.f32),
      losses: micros.map((f, i) => ({
        total: rb.add(`micro ${i} loss`, f.terms.total.data, decode.scalar),
        main: rb.add(`micro ${i} main loss`, f.terms.main.data, decode.scalar),
        aux: rb.add(`micro ${i} aux loss`, f.terms.aux.data, decode.scalar),
        z: rb.add(`micro ${i} z loss`, f.terms.z.data, decode.scalar),
        heads: f.terms.headLosses.map((h, j) => rb.add(`micro ${i} head ${j} loss`, h.data, decode.scalar)),
      })),
      guards: micros.flatMap((f, i) => (f.guard ? [rb.add(`micro ${i} guard stats`, f.guard.stats, decode.f32)] : [])),
      routing: micros.map((f, i) =>
        f.route.map((l) => ({
          layer: l.layer,
          stats: rb.add(`micro ${i} layer ${l.layer} router stats`, l.stats, decode.f32),
          switchLoss: rb.add(`micro ${i} layer ${l.layer} switch loss`, l.switchLoss, decode.scalar),
          dropped: rb.add(`micro ${i} layer ${l.layer} dropped`, l.dropped, decode.scalar),
        })),
      ),
    };
    const readback = rb.read(this.rt);
    for (const f of micros) {
      f.graph.dispose();
      f.guard?.dispose();
      for (const l of f.route) {
        l.stats.dispose();
        l.switchLoss.dispose();
        l.dropped.dispose();
      }
    }
    upd.clip.dispose();
    upd.stateAfter.dispose();
    return { readback, fields };
  }

  /** Wait for a recorded step's metrics (in recording order) and update the host's mirrors. */
  async resolve(ps: PendingStep): Promise<StepMetrics> {
    const { rt, model, cfg } = this;
    const got = await ps.readback;
    const f = ps.fields;
    const clipV = got.get(f.clip);
    const before = got.get(f.stateBefore);
    const after = got.get(f.stateAfter);
    const terms = f.losses.map((l) => ({
      total: got.get(l.total),
      main: got.get(l.main),
      aux: got.get(l.aux),
      z: got.get(l.z),
      heads: l.heads.map((h) => got.get(h)),
    }));
    const bad = ps.guards.flatMap((gb, i) => gb.parse(got.get(f.guards[i]!)));
    const skipped = after[STATE.adamStep] === before[STATE.adamStep];
    const scaleEvent: ScaleEvent = SCALE_EVENTS[after[STATE.event]!] ?? 'none';
    // Offloaded AdamW: the GPU found the step good (the guards, the norm and the loss-scale check
    // ran there); only now do gradients move to the host and the new weights come back.
    if (!skipped) {
      const hostUpdate = this.optimizer.applyAfterReadback(ps.lr, clipV[CLIP.gradScale]!);
      if (hostUpdate) await hostUpdate;
    }
    // The GPU state is the truth; the host keeps a mirror for checkpoints and the next push.
    this.optimizer.step = after[STATE.adamStep]!;
    if (this.scaler) this.scaler.restore({ scale: after[STATE.lossScale]!, goodSteps: after[STATE.goodSteps]! });
    if (skipped && bad.length === 0 && cfg.stability.guards && ps.params) {
      // The non-finite value was born in backward: name the gradient (one extra pass, bad steps only).
      const gradGuard = new GuardBatch(ps.params.map((p) => ({ name: `${p.name}.grad`, layer: p.layer, tensor: p.grad! })));
      bad.push(...(await gradGuard.read()));
      gradGuard.dispose();
    }
    this.release(ps);
    const routing = f.routing.map((layers) =>
      layers.map((l) => ({ layer: l.layer, s: got.get(l.stats), sw: got.get(l.switchLoss), dropped: got.get(l.dropped) })),
    );

    const mean = (f: (t: (typeof terms)[number]) => number) => terms.reduce((a, t) => a + f(t), 0) / terms.length;
    const E = model.cfg.experts;
    const lossTotal = mean((t) => t.total);
    // Routing read from a non-finite forward is not a distribution (see LayerRoutingMetrics).
    const forwardBad = (skipped && scaleEvent !== 'overflow') || !Number.isFinite(lossTotal);
    const routingMetrics: LayerRoutingMetrics[] = routing[0]!.map((l0, li) => {
      const load = Array.from({ length: E }, (_, e) => routing.reduce((a, mb) => a + mb[li]!.s[e]!, 0) / routing.length);
      if (forwardBad) return { layer: l0.layer, load: null, entropy: null, maxShare: null, dropped: null, switchLoss: null };
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
      loss: lossTotal,
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

  /**
   * The host side of finishing a recorded step, without its metrics: the step is no longer in
   * flight and kept gradients are freed. resolve() calls it once the metrics are read; the memory
   * planner calls it directly (the meta runtime has no values to read).
   */
  release(ps: PendingStep): void {
    this.pending--;
    if (ps.params) zeroGrad(this.model.params, true);
  }

  dispose(): void {
    this.state.dispose();
  }
}
