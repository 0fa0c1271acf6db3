/**
 * The Time-MoE decoder (docs/DESIGN.md §5): point embedding SwiGLU(Linear(1->d), Linear(1->d)), pre-norm
 * decoder layers with causal RoPE attention and a sparse MoE FFN, final RMSNorm, then either
 * forecasting heads Linear(d -> horizon) per horizon or a classification head (mean pool ->
 * Linear(d -> C)). Parameter names equal the Hugging Face Time-MoE state dict.
 */
import type { Var } from '../autograd/variable.ts';
import { swiglu } from '../autograd/ops/activation.ts';
import { meanPoolSeq } from '../autograd/ops/loss.ts';
import type { Backend } from '../kernels/tensor.ts';
import { Rng } from '../util/rng.ts';
import { releaseRopeTables, ropeTable } from '../kernels/rope.ts';
import type { ModelConfig } from './config.ts';
import { Linear } from './layers/linear.ts';
import { RMSNorm } from './layers/rmsnorm.ts';
import { DecoderLayer, type Tap, type TapSite } from './layers/decoder-layer.ts';
import type { LayerRouting } from './layers/moe.ts';
import type { SeqShape } from './layers/attention.ts';
import { ParamFactory } from './layers/module.ts';
import type { Parameter } from './parameter.ts';
import { LoraAdapter, type LoraConfig } from './lora.ts';

export interface ModelOutput {
  /** Forecast predictions per horizon, each [B*T, horizon]; empty for the classifier. */
  predictions: Var[];
  /** Classifier logits [B, C]; null for forecasting. */
  logits: Var | null;
  routing: LayerRouting[];
  /** Per-layer activations for the isfinite guards, in forward order. */
  taps: Tap[];
}

export interface ForwardOptions {
  /** Write NaN into one activation (fault injection for experiments and guard tests). */
  injectNan?: { layer: number; site: TapSite } | null;
  /** Activation recomputation: keep only each decoder layer's input, re-run the layer in backward. */
  recompute?: boolean;
  /**
   * Storage of activations (and so of their gradients). 'f16': the embedding writes f16 and every
   * op keeps its input's dtype, except the router logits and the heads, which are f32.
   */
  activations?: 'f32' | 'f16';
}

/** How the parameters are held: on the GPU in `working` storage; `keepHost` keeps the f32 init on the host (optim.offload "host"). */
export interface WeightStorage {
  working?: 'f32' | 'f16';
  keepHost?: boolean;
}

export class TimeMoeModel {
  readonly params: Parameter[];
  readonly embGate: Linear;
  readonly embValue: Linear;
  readonly layers: DecoderLayer[];
  readonly norm: RMSNorm;
  readonly heads: Linear[];
  readonly classifier: Linear | null;
  /** optim.lora adapters, in parameter order (empty without LoRA). */
  readonly adapters: LoraAdapter[] = [];

  constructor(
    readonly rt: Backend,
    readonly cfg: ModelConfig,
    seed = 0,
    storage: WeightStorage = {},
    lora: LoraConfig | null = null,
  ) {
    // Working weights in f16 are the matrices (norm weights and biases stay f32, as the kernels need).
    const working = storage.working ?? 'f32';
    const f = new ParamFactory(rt, new Rng(seed), {
      dtypeOf: (shape) => (working === 'f16' && shape.length >= 2 ? 'f16' : 'f32'),
      keepHost: !!storage.keepHost,
    });
    const init = cfg.init;
    const d = cfg.hidden;
    const residualStd = init.scaleResidualByDepth ? init.std / Math.sqrt(2 * cfg.layers) : init.std;
    this.embGate = new Linear(f, 'model.embed_layer.gate_layer', 1, d, { bias: false, std: init.embeddingStd, group: 'embedding', layer: -1 });
    this.embValue = new Linear(f, 'model.embed_layer.emb_layer', 1, d, { bias: false, std: init.embeddingStd, group: 'embedding', layer: -1 });
    this.layers = [];
    for (let i = 0; i < cfg.layers; i++) {
      this.layers.push(
        new DecoderLayer(f, i, {
          d,
          heads: cfg.heads,
          theta: cfg.ropeTheta,
          eps: cfg.rmsEps,
          std: init.std,
          residualStd,
          moe: {
            d,
            experts: cfg.experts,
            topK: cfg.topK,
            intermediate: cfg.moeIntermediate,
            sharedIntermediate: cfg.sharedIntermediate,
            normTopkProb: cfg.normTopkProb,
            capacityFactor: cfg.capacityFactor,
            std: init.std,
            routerStd: init.routerStd,
            downStd: residualStd,
          },
        }),
      );
    }
    this.norm = new RMSNorm(f, 'model.norm', d, cfg.rmsEps, -1);
    if (cfg.task === 'classify') {
      this.heads = [];
      this.classifier = new Linear(f, 'classifier', d, cfg.numClasses!, { bias: true, std: init.headStd, group: 'head', layer: -1 });
    } else {
      this.heads = cfg.horizons.map((h, n) => new Linear(f, `lm_heads.${n}.out_layer`, d, h, { bias: false, std: init.headStd, group: 'head', layer: -1 }));
      this.classifier = null;
    }
    this.params = lora ? [...f.params, ...this.adapt(lora, new ParamFactory(rt, new Rng((seed ^ 0x4c6f5241) >>> 0), f.storage))] : f.params;
  }

  /**
   * Attach LoRA adapters to the targeted projections. They draw from their own RNG after every
   * base weight, so a seed gives the same base model with or without adapters.
   */
  private adapt(lora: LoraConfig, lf: ParamFactory): Parameter[] {
    const want = new Set<string>(lora.targets);
    const adapt = (base: Parameter) => {
      const a = new LoraAdapter(lf, base, lora);
      this.adapters.push(a);
      return a;
    };
    for (const layer of this.layers) {
      const { attn, ffn } = layer;
      for (const [t, lin] of [
        ['q_proj', attn.q],
        ['k_proj', attn.k],
        ['v_proj', attn.v],
        ['o_proj', attn.o],
      ] as const)
        if (want.has(t)) lin.adapter = adapt(lin.weight);
      if (want.has('gate_proj')) {
        ffn.gateUpAdapter = adapt(ffn.gateUpProj);
        if (ffn.shared) ffn.shared.gateUpAdapter = adapt(ffn.shared.gateUp);
      }
      if (want.has('down_proj')) {
        ffn.downAdapter = adapt(ffn.downProj);
        if (ffn.shared) ffn.shared.down.adapter = adapt(ffn.shared.down.weight);
      }
    }
    return lf.params;
  }

  /** x: [B*T, 1] values (normalised series), batch-major. */
  forward(x: Var, s: SeqShape, opts: ForwardOptions = {}): ModelOutput {
    const act = opts.activations ?? 'f32';
    let h = swiglu(this.embGate.forward(x, act), this.embValue.forward(x, act));
    const routing: LayerRouting[] = [];
    const taps: Tap[] = [];
    this.layers.forEach((layer, i) => {
      const fault = opts.injectNan && opts.injectNan.layer === i ? opts.injectNan.site : null;
      const r = layer.forward(h, s, fault, opts.recompute ? { params: this.params.filter((p) => p.layer === i) } : null);
      h = r.h;
      routing.push(r.routing);
      taps.push(...r.taps);
    });
    h = this.norm.forward(h);
    if (this.classifier) return { predictions: [], logits: this.classifier.forward(meanPoolSeq(h, s)), routing, taps };
    // Forecasts in f32: the losses read them.
    return { predictions: this.heads.map((head) => head.forward(h, 'f32')), logits: null, routing, taps };
  }

  /**
   * Build per-shape tables (RoPE cos/sin) before a step is recorded: creating them uploads data,
   * which would otherwise force a submit in the middle of the step.
   */
  prepare(seqLen: number): void {
    ropeTable(this.rt, seqLen, this.cfg.hidden / this.cfg.heads, this.cfg.ropeTheta);
  }

  parameter(name: string): Parameter {
    const p = this.params.find((q) => q.name === name);
    if (!p) throw new Error(`no parameter named ${name}`);
    return p;
  }

  get parameterCount(): number {
    return this.params.reduce((a, p) => a + p.data.size, 0);
  }

  /** Frees the parameters and the runtime's RoPE tables (rebuilt on demand by a model still in use). */
  dispose(): void {
    for (const p of this.params) p.dispose();
    releaseRopeTables(this.rt);
  }
}
