// GPU-resident training state, so that recording a step never needs the previous step's readback:
//   state = [adamStep, lossScale, goodSteps, event]  (f32; adamStep = AdamW updates applied, exact
//   up to 2^24; event of the last step_end: 0 none, 1 scale grew, 2 overflow, 3 overflow at minScale)
// entry adam_scalars: bias-corrected AdamW scalars of the next update, from adamStep.
// entry loss_seed:    the backward's seed lossScale / accumulation.
// entry step_end:     after the update: count it unless skipped; update the loss scale.
// Entries bind different buffers at binding 1 (each entry uses only its own).

struct Params {
  a: f32,        // adam_scalars: lr; loss_seed: 1 / accumulation; step_end: minScale
  b: f32,        // adam_scalars: ln(beta1); step_end: maxScale
  c: f32,        // adam_scalars: ln(beta2)
  _p0: f32,
  scaling: u32,  // step_end: dynamic loss scaling on
  interval: u32, // step_end: growth interval
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> guard_flag: array<f32>;
@group(0) @binding(2) var<storage, read> norm_flag: array<f32>;
@group(1) @binding(0) var<uniform> u: Params;

// exp(x) - 1 without the cancellation near 0: 1 - beta2^t for beta2 = 0.999 and small t loses ~4
// digits to f32 rounding as 1 - exp(x) (and Kahan's (e-1)·x/log(e) form too, with lavapipe's
// log). Taylor to x^12/12! for |x| < 0.5 (remainder < 0.5^13/13! ~ 2e-14); past that exp(x) <= 0.61
// and 1 - exp(x) has no cancellation.
fn expm1(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    var term = x;
    var sum = x;
    for (var k = 2.0; k <= 12.0; k += 1.0) {
      term = term * x / k;
      sum += term;
    }
    return sum;
  }
  return exp(x) - 1.0;
}

@compute @workgroup_size(1)
fn adam_scalars() {
  let t = state[0] + 1.0;
  out[0] = u.a / -expm1(t * u.b); // lr / (1 - beta1^t)
  out[1] = sqrt(-expm1(t * u.c)); // sqrt(1 - beta2^t)
}

@compute @workgroup_size(1)
fn loss_seed() {
  out[0] = state[1] * u.a;
}

// Non-zero or NaN (a NaN count still means "bad").
fn flagged(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) != 0u;
}

@compute @workgroup_size(1)
fn step_end() {
  let forwardBad = flagged(guard_flag[0]);
  let normBad = flagged(norm_flag[0]);
  if (!forwardBad && !normBad) { state[0] = state[0] + 1.0; }
  var event = 0.0;
  if (u.scaling != 0u) {
    // test/reference/train-state-ref.ts is the reference model of this logic.
    if (forwardBad) {
      state[2] = 0.0;
    } else if (normBad) {
      state[2] = 0.0;
      if (state[1] > u.a) {
        state[1] = max(u.a, state[1] * 0.5);
        event = 2.0;
      } else {
        event = 3.0;
      }
    } else {
      state[2] = state[2] + 1.0;
      if (state[2] >= f32(u.interval) && state[1] < u.b) {
        state[1] = min(u.b, state[1] * 2.0);
        state[2] = 0.0;
        event = 1.0;
      }
    }
  }
  state[3] = event;
}
