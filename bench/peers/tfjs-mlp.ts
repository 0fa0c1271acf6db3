/**
 * The tfjs-backend-webgpu peer of the MLP training step (bench/mlp.bench.ts): the same
 * 256 -> 1024 (ReLU) -> 256 MLP, MSE loss and plain SGD, written the way a tfjs user would
 * (tf.train.sgd + optimizer.minimize, tf.losses.meanSquaredError). Runs on the same Dawn
 * instance and adapter as our engine (loadTfjs in ./tfjs.ts). `await loss.data()` is the
 * per-step sync point, as our bench awaits the queue per step.
 */
import type { Scalar } from '@tensorflow/tfjs';
import type { TF } from './tfjs.ts';

export interface MlpShape {
  batch: number;
  din: number;
  hidden: number;
  lr: number;
}

export interface TfMlp {
  /** Run `steps` SGD steps, each synced by reading its loss; returns ms per step. */
  sample(steps: number): Promise<number>;
  loss0: number;
  lossLast: number;
  dispose(): void;
}

/**
 * Build the model and run (untimed) the first step, which compiles the shaders. `fused` uses
 * tf.fused.matMul (bias + ReLU inside the matmul kernel), the fastest formulation tfjs offers;
 * otherwise matMul/add/relu as separate ops.
 */
export async function tfMlp(tf: TF, s: MlpShape, opts: { fused?: boolean } = {}): Promise<TfMlp> {
  const lim1 = 1 / Math.sqrt(s.din);
  const lim2 = 1 / Math.sqrt(s.hidden);
  // tfjs Dense layout: W [in, out], y = x·W + b.
  const w1 = tf.variable(tf.randomUniform([s.din, s.hidden], -lim1, lim1, 'float32', 1));
  const b1 = tf.variable(tf.randomUniform([s.hidden], -lim1, lim1, 'float32', 2));
  const w2 = tf.variable(tf.randomUniform([s.hidden, s.din], -lim2, lim2, 'float32', 3));
  const b2 = tf.variable(tf.randomUniform([s.din], -lim2, lim2, 'float32', 4));
  const x = tf.randomNormal([s.batch, s.din], 0, 1, 'float32', 5);
  const y = tf.randomNormal([s.batch, s.din], 0, 1, 'float32', 6);
  const opt = tf.train.sgd(s.lr);
  const lossFn = (): Scalar => {
    const h = opts.fused ? tf.fused.matMul({ a: x, b: w1, bias: b1, activation: 'relu' }) : tf.relu(tf.add(tf.matMul(x, w1), b1));
    const out = opts.fused ? tf.fused.matMul({ a: h, b: w2, bias: b2 }) : tf.add(tf.matMul(h, w2), b2);
    return tf.losses.meanSquaredError(y, out) as Scalar;
  };
  const step = async (): Promise<number> => {
    const loss = opt.minimize(lossFn, true, [w1, b1, w2, b2])!;
    const v = (await loss.data())[0]!;
    loss.dispose();
    return v;
  };
  const m: TfMlp = {
    loss0: await step(),
    lossLast: NaN,
    async sample(steps) {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) m.lossLast = await step();
      return (performance.now() - t0) / steps;
    },
    dispose() {
      for (const t of [w1, b1, w2, b2, x, y]) t.dispose();
      opt.dispose();
    },
  };
  return m;
}
