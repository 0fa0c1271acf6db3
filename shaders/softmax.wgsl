// Softmax / log-softmax over the last axis of [rows, cols], and their backward passes.
// A workgroup of 256 lanes handles 256 / LPR rows with LPR lanes per row (LPR = the power of
// two >= cols, at most 256), so short rows (router logits over 8 experts) do not leave most
// lanes idle. Each lane strides over its row; row-wise max / sum go through a tree in
// workgroup memory. Max-subtraction keeps exp from overflowing; accumulation is f32.
override LPR: u32 = 256u;
override LOG: bool = false;
const WG: u32 = 256u;
const NEG_BIG: f32 = -3.4028234663852886e38; // identity of max (-FLT_MAX; -inf is no WGSL literal)

struct Params { rows: u32, cols: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;   // forward: x; backward: y
@group(0) @binding(2) var<storage, read> b: array<f32>;   // backward: dy
@group(1) @binding(0) var<uniform> u: Params;

var<workgroup> red: array<f32, WG>;

// Reduce v over the LPR lanes of this lane's row segment; every lane gets the result.
// Called from uniform control flow (all lanes, valid row or not), so the barriers are legal.
fn seg_max(lidx: u32, v: f32) -> f32 {
  if (LPR == 1u) { return v; } // a thread per row: nothing to combine, no barriers
  red[lidx] = v;
  workgroupBarrier();
  let lane = lidx % LPR;
  for (var s = LPR / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lidx] = max(red[lidx], red[lidx + s]); }
    workgroupBarrier();
  }
  let r = red[lidx - lane];
  workgroupBarrier(); // red is reused by the next reduction
  return r;
}

fn seg_sum(lidx: u32, v: f32) -> f32 {
  if (LPR == 1u) { return v; } // a thread per row: nothing to combine, no barriers
  red[lidx] = v;
  workgroupBarrier();
  let lane = lidx % LPR;
  for (var s = LPR / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lidx] += red[lidx + s]; }
    workgroupBarrier();
  }
  let r = red[lidx - lane];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let row = (wid.x + wid.y * nwg.x) * (WG / LPR) + lidx / LPR;
  let lane = lidx % LPR;
  let valid = row < u.rows;
  let base = row * u.cols;
  var m = NEG_BIG;
  if (valid) {
    for (var c = lane; c < u.cols; c += LPR) { m = max(m, a[base + c]); }
  }
  m = seg_max(lidx, m);
  var s = 0.0;
  if (valid) {
    for (var c = lane; c < u.cols; c += LPR) { s += exp(a[base + c] - m); }
  }
  s = seg_sum(lidx, s);
  if (valid) {
    if (LOG) {
      let ls = log(s);
      for (var c = lane; c < u.cols; c += LPR) { out[base + c] = (a[base + c] - m) - ls; }
    } else {
      let inv = 1.0 / s;
      for (var c = lane; c < u.cols; c += LPR) { out[base + c] = exp(a[base + c] - m) * inv; }
    }
  }
}

// softmax:     dx = y * (dy - sum(dy * y))
// log-softmax: dx = dy - exp(y) * sum(dy)        (y = log-probabilities)
@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let row = (wid.x + wid.y * nwg.x) * (WG / LPR) + lidx / LPR;
  let lane = lidx % LPR;
  let valid = row < u.rows;
  let base = row * u.cols;
  var s = 0.0;
  if (valid) {
    for (var c = lane; c < u.cols; c += LPR) {
      if (LOG) { s += b[base + c]; } else { s += b[base + c] * a[base + c]; }
    }
  }
  s = seg_sum(lidx, s);
  if (valid) {
    for (var c = lane; c < u.cols; c += LPR) {
      let y = a[base + c];
      let dy = b[base + c];
      if (LOG) { out[base + c] = dy - exp(y) * s; } else { out[base + c] = y * (dy - s); }
    }
  }
}
