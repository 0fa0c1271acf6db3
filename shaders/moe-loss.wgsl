// MoE balancing losses (Switch per layer, HF/Time-MoE pooled), the ST-MoE router z-loss, and
// per-layer routing statistics. Every reduction is a fixed-order tree in one workgroup, so
// results are bitwise reproducible. Scalars in and out are [1] tensors: nothing is read back.
//
// Column statistics of one layer, at stats[base + e * 3 + (0, 1, 2)]:
//   (sum_t probs[t, e], picks of e over all k slots, sum_t -p log p)
// Both balancing losses are E * sum_i f_i * P_i with f_i = picks_i * fscale, P_i = psum_i / ntot:
//   Switch: fscale = 1 / (N k)  (balanced = 1);   pooled: fscale = 1 / N_all  (balanced = k).
// Their gradient w.r.t. probs[t, i] is E * f_i / ntot (f is a count, it gets none).

// #include "grid"

override ACCUMULATE: bool = false; // backward kernels: add into the output instead of overwriting

struct Params { n: u32, e: u32, k: u32, base: u32, layers: u32, ntot: u32, fscale: f32, _p: u32 }
@group(1) @binding(0) var<uniform> u: Params;

const WG: u32 = 256u;
var<workgroup> red: array<vec3<f32>, 256>;

// Tree-reduce red[0..WG) into red[0]; every invocation of the workgroup must call it.
fn reduce_wg(lid: u32) {
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    workgroupBarrier();
    if (lid < s) { red[lid] += red[lid + s]; }
  }
  workgroupBarrier();
}

// ---- colstats: one workgroup per expert ----
@group(0) @binding(0) var<storage, read> c_probs: array<f32>; // [N, E]
@group(0) @binding(1) var<storage, read> c_idx: array<u32>;   // [N, k]
@group(0) @binding(2) var<storage, read_write> c_stats: array<f32>;

@compute @workgroup_size(256)
fn colstats(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = wid.x;
  var acc = vec3<f32>(0.0);
  for (var t = lid; t < u.n; t += WG) {
    let p = c_probs[t * u.e + e];
    var picks = 0.0;
    for (var j = 0u; j < u.k; j++) { picks += select(0.0, 1.0, c_idx[t * u.k + j] == e); }
    // p log p -> 0 as p -> 0; an underflowed probability contributes nothing.
    let h = select(0.0, -p * log(p), p > 0.0);
    acc += vec3<f32>(p, picks, h);
  }
  red[lid] = acc;
  reduce_wg(lid);
  if (lid == 0u) {
    let o = u.base + e * 3u;
    c_stats[o] = red[0].x;
    c_stats[o + 1u] = red[0].y;
    c_stats[o + 2u] = red[0].z;
  }
}

// ---- loss_finalize: stats of `layers` layers -> loss [1], coef [E] (d loss / d probs[., i]) ----
@group(0) @binding(0) var<storage, read> f_stats: array<f32>; // [layers, E, 3]
@group(0) @binding(1) var<storage, read_write> f_loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_coef: array<f32>;

var<workgroup> fp: array<f32, 64>;

@compute @workgroup_size(64)
fn loss_finalize(@builtin(local_invocation_index) e: u32) {
  let E = f32(u.e);
  let ntot = f32(u.ntot);
  if (e < u.e) {
    var psum = 0.0;
    var picks = 0.0;
    for (var l = 0u; l < u.layers; l++) {
      psum += f_stats[(l * u.e + e) * 3u];
      picks += f_stats[(l * u.e + e) * 3u + 1u];
    }
    let f = picks * u.fscale;
    f_coef[e] = E * f / ntot;
    fp[e] = f * (psum / ntot);
  }
  workgroupBarrier();
  if (e == 0u) {
    var s = 0.0;
    for (var i = 0u; i < u.e; i++) { s += fp[i]; }
    f_loss[0] = E * s;
  }
}

// ---- stats_finalize: [E + 2] = load fraction per expert, mean entropy, max load fraction ----
@group(0) @binding(0) var<storage, read> s_stats: array<f32>; // [E, 3]
@group(0) @binding(1) var<storage, read_write> s_out: array<f32>;

@compute @workgroup_size(64)
fn stats_finalize(@builtin(local_invocation_index) e: u32) {
  if (e < u.e) { s_out[e] = s_stats[e * 3u + 1u] * u.fscale; }
  if (e == 0u) {
    var h = 0.0;
    var mx = 0.0;
    for (var i = 0u; i < u.e; i++) {
      h += s_stats[i * 3u + 2u];
      mx = max(mx, s_stats[i * 3u + 1u] * u.fscale);
    }
    s_out[u.e] = h / f32(u.n);
    s_out[u.e + 1u] = mx;
  }
}


// ---- balance_backward: d_probs[t, e] (+)= g * coef[e] ----
@group(0) @binding(0) var<storage, read> bb_g: array<f32>;    // [1] upstream gradient
@group(0) @binding(1) var<storage, read> bb_coef: array<f32>; // [E]
@group(0) @binding(2) var<storage, read_write> bb_out: array<f32>; // [N, E]

@compute @workgroup_size(256)
fn balance_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i >= u.n * u.e) { return; }
  var v = bb_g[0] * bb_coef[i % u.e];
  if (ACCUMULATE) { v += bb_out[i]; }
  bb_out[i] = v;
}

// ---- z-loss: lse per token, then mean of lse^2 ----
@group(0) @binding(0) var<storage, read> z_logits: array<f32>; // [N, E]
@group(0) @binding(1) var<storage, read_write> z_lse: array<f32>; // [N]

fn lse_of(t: u32) -> f32 {
  let row = t * u.e;
  var m = z_logits[row];
  for (var e = 1u; e < u.e; e++) { m = max(m, z_logits[row + e]); }
  var s = 0.0;
  for (var e = 0u; e < u.e; e++) { s += exp(z_logits[row + e] - m); }
  return m + log(s);
}

@compute @workgroup_size(256)
fn zloss_lse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = folded_index(gid, nwg, 256u);
  if (t < u.n) { z_lse[t] = lse_of(t); }
}

@group(0) @binding(0) var<storage, read> zr_lse: array<f32>;
@group(0) @binding(1) var<storage, read_write> zr_loss: array<f32>;

@compute @workgroup_size(256)
fn zloss_reduce(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var t = lid; t < u.n; t += WG) { acc += zr_lse[t] * zr_lse[t]; }
  red[lid] = vec3<f32>(acc, 0.0, 0.0);
  reduce_wg(lid);
  if (lid == 0u) { zr_loss[0] = red[0].x / f32(u.n); }
}

// d z / d logits[t, e] = 2 lse_t softmax(logits)[t, e] / N, times the upstream g.
@group(0) @binding(0) var<storage, read> zb_logits: array<f32>;
@group(0) @binding(1) var<storage, read> zb_lse: array<f32>;
@group(0) @binding(2) var<storage, read> zb_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> zb_out: array<f32>;

@compute @workgroup_size(256)
fn zloss_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i >= u.n * u.e) { return; }
  let lse = zb_lse[i / u.e];
  var v = zb_g[0] * 2.0 * lse * exp(zb_logits[i] - lse) / f32(u.n);
  if (ACCUMULATE) { v += zb_out[i]; }
  zb_out[i] = v;
}
