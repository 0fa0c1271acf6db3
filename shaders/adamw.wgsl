// AdamW, in place on p, m, v (PyTorch torch.optim.AdamW, foreach=False order of operations):
//   g' = g * clip;  p *= 1 - lr*wd;  m = lerp(m, g', 1 - b1);  v = b2 v + (1 - b2) g'^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The clip coefficient and the skip flag are read from GPU buffers (no readback); when unused
// their slots compile to constants and the buffers are not bound:
//   slot EXTRA_DECLS  declarations of `clip` / `skip` at bindings 4, 5 (as used)
//   slot COEF         body of fn clip_coef() -> f32
//   slot SKIP         body of fn skip_step() -> bool (true: leave p, m, v untouched)
//   slots STEP_SIZE, BC2  lr/(1-b1^t) and sqrt(1-b2^t): uniforms from the host, or read from a
//                     GPU buffer when the step count lives on the GPU (train-state.wgsl)
// entry `clip_coef`: [norm, coef, clipped fraction, non-finite flag, coef/scale] from the sum of
// squares of loss-scaled gradients (invScale = 1/scale; 1 without loss scaling).
// #include "grid"

struct Params {
  count: u32,
  clipIndex: u32,
  skipIndex: u32,
  _p0: u32,
  decay: f32,     // 1 - lr * wd
  _b1: f32,     // unused: lerp needs only 1 - b1
  b2: f32,
  eps: f32,
  stepSize: f32,  // lr / (1 - b1^t)
  bc2sqrt: f32,   // sqrt(1 - b2^t)
  omb1: f32,     // 1 - b1, formed in float64 on the host: 1 - f32(0.999) is 1.3e-5 off
  omb2: f32,     // 1 - b2
}
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
{{EXTRA_DECLS}}
@group(1) @binding(0) var<uniform> u: Params;

fn clip_coef() -> f32 {
  {{COEF}}
}

fn skip_step() -> bool {
  {{SKIP}}
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i >= u.count || skip_step()) { return; }
  let gi = g[i] * clip_coef();
  let pi = p[i] * u.decay;
  let mi = m[i] + u.omb1 * (gi - m[i]);
  let vi = u.b2 * v[i] + u.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - {{STEP_SIZE}} * mi / (sqrt(vi) / {{BC2}} + u.eps);
}

struct ClipParams { maxNorm: f32, nanBits: u32, invScale: f32, _p1: u32 }
@group(0) @binding(0) var<storage, read_write> clip_out: array<f32>;
@group(0) @binding(1) var<storage, read> sumsq: array<f32>;
@group(1) @binding(0) var<uniform> uc: ClipParams;

@compute @workgroup_size(1)
fn clip_coef_main() {
  let inv_scale = {{INV_SCALE}};
  let norm = sqrt(sumsq[0]) * inv_scale;
  let bits = bitcast<u32>(norm);
  var coef: f32;
  var bad = 0.0;
  if ((bits & 0x7f800000u) == 0x7f800000u) {
    bad = 1.0;
    // PyTorch's formula gives maxNorm / (inf + 1e-6) = 0 for +Inf and NaN for NaN; WGSL's min
    // with NaN is implementation-defined, so spell both out.
    coef = select(bitcast<f32>(uc.nanBits), 0.0, (bits & 0x007fffffu) == 0u);
  } else {
    coef = min(1.0, uc.maxNorm / (norm + 1e-6));
  }
  clip_out[0] = norm;
  clip_out[1] = coef;
  clip_out[2] = 1.0 - coef;
  clip_out[3] = bad;
  clip_out[4] = coef * inv_scale;
}
