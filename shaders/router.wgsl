// Top-k router: softmax over E expert logits per token, pick the k most probable experts,
// and the backward from d_weights (plus an optional additive d_probs) to d_logits.
// One invocation per token: E <= 64 and k <= E are small, so a token's row is a serial loop.
//
// Slot EXTRA: the extra d_probs term of backward, `dprobs_extra[i]` or `0.0`
// (when 0.0 the buffer is unreferenced and so absent from the auto layout).
// Overrides: RENORM (weights renormalised to sum 1 over the k picks).

// #include "grid"

override RENORM: bool = false;

struct Params { n: u32, e: u32, k: u32, chunk: u32 } // chunk: tokens per forward_counts invocation
@group(1) @binding(0) var<uniform> u: Params;

@group(0) @binding(0) var<storage, read> logits: array<f32>;   // forward: [N, E]
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;  // [N, E]
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;    // [N, k]
@group(0) @binding(3) var<storage, read_write> weights: array<f32>; // [N, k]


// Softmax and top-k of token t: writes its probs, idx and weights rows and returns the picked
// set as a 64-bit mask (x: experts 0..31, y: experts 32..63).
fn route(t: u32) -> vec2<u32> {
  let E = u.e;
  let row = t * E;
  var m = logits[row];
  for (var e = 1u; e < E; e++) { m = max(m, logits[row + e]); }
  var s = 0.0;
  for (var e = 0u; e < E; e++) { s += exp(logits[row + e] - m); }
  for (var e = 0u; e < E; e++) { probs[row + e] = exp(logits[row + e] - m) / s; }

  // Selection ranks by logit: the same order as by probability, but exact (two different
  // logits can round to the same f32 probability). Strict '>' scanning upward lets the lower
  // index win a tie. The first unpicked index is the fallback, so idx stays in range even
  // for NaN logits (dispatch relies on idx < E).
  var picked_lo = 0u; // bit e of experts 0..31 already picked
  var picked_hi = 0u; // experts 32..63
  var wsum = 0.0;
  for (var j = 0u; j < u.k; j++) {
    var best = E;
    var bestv = 0.0;
    for (var e = 0u; e < E; e++) {
      let taken = select(picked_hi, picked_lo, e < 32u) >> (e & 31u);
      if ((taken & 1u) == 1u) { continue; }
      let v = logits[row + e];
      if (best == E || v > bestv) { best = e; bestv = v; }
    }
    if (best < 32u) { picked_lo |= 1u << best; } else { picked_hi |= 1u << (best - 32u); }
    idx[t * u.k + j] = best;
    let p = probs[row + best];
    weights[t * u.k + j] = p;
    wsum += p;
  }
  if (RENORM) {
    for (var j = 0u; j < u.k; j++) { weights[t * u.k + j] = weights[t * u.k + j] / wsum; }
  }
  return vec2<u32>(picked_lo, picked_hi);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = folded_index(gid, nwg, 64u);
  if (t >= u.n) { return; }
  route(t);
}

// ---- forward_counts: the router plus per-chunk expert histograms for dispatch ----
// One invocation per chunk of u.chunk consecutive tokens (the last chunk may be short), routed
// one after another, so the histogram needs no workgroup memory and no barrier (barriers are
// costly on CPU Vulkan). chunk_counts[e * chunks4 + c] = pairs of chunk c routed to expert e:
// expert-major, each expert's run padded with zeros to chunks4 (a multiple of 4), so the
// dispatch kernel `place_fused` reads it as vec4s. Each invocation counts straight into its own
// column (no private per-expert array: dynamically indexed, those are slow on CPU Vulkan).
@group(0) @binding(4) var<storage, read_write> chunk_counts: array<u32>; // [E, chunks4]

// Tens to hundreds of chunks: small workgroups spread them over more cores.
override CHUNK_WG: u32; // invocations per forward_counts workgroup: router.ts CHUNK_WG

@compute @workgroup_size(CHUNK_WG)
fn forward_counts(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = folded_index(gid, nwg, CHUNK_WG);
  let chunks = (u.n + u.chunk - 1u) / u.chunk;
  let chunks4 = (chunks + 3u) & ~3u;
  if (c >= chunks4) { return; }
  for (var e = 0u; e < u.e; e++) { chunk_counts[e * chunks4 + c] = 0u; } // padding chunks stay 0
  let t1 = min((c + 1u) * u.chunk, u.n);
  for (var t = c * u.chunk; t < t1; t++) {
    var picked = route(t);
    // k set bits: one increment per pick.
    while (picked.x != 0u) {
      chunk_counts[firstTrailingBit(picked.x) * chunks4 + c] += 1u;
      picked.x &= picked.x - 1u;
    }
    while (picked.y != 0u) {
      chunk_counts[(32u + firstTrailingBit(picked.y)) * chunks4 + c] += 1u;
      picked.y &= picked.y - 1u;
    }
  }
}

// ---- backward ----
// Non-renormalised: w_j = p[i_j], so g_p[i_j] += dw_j.
// Renormalised: w_j = p[i_j] / S, S = sum_m p[i_m], so g_p[i_j] += (dw_j - sum_m dw_m w_m) / S.
// Then softmax: d_logits[e] = p_e * (g_p[e] - sum_c p_c g_p[c]), with g_p also carrying d_probs_extra.
@group(0) @binding(0) var<storage, read> b_probs: array<f32>;  // [N, E]
@group(0) @binding(1) var<storage, read> b_idx: array<u32>;    // [N, k]
@group(0) @binding(2) var<storage, read> b_dw: array<f32>;     // [N, k]
@group(0) @binding(3) var<storage, read_write> d_logits: array<f32>; // [N, E]
@group(0) @binding(4) var<storage, read> dprobs_extra: array<f32>; // [N, E], bound only when EXTRA reads it

fn extra(i: u32) -> f32 { return {{EXTRA}}; }

// Gradient reaching probs[t, i_j] from the weights.
fn picked_grad(t: u32, j: u32, S: f32, dot_dw_w: f32) -> f32 {
  let dw = b_dw[t * u.k + j];
  if (RENORM) { return (dw - dot_dw_w) / S; }
  return dw;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = folded_index(gid, nwg, 64u);
  if (t >= u.n) { return; }
  let E = u.e;
  let K = u.k;
  let row = t * E;
  var S = 0.0;
  var dot_dw_w = 0.0;
  if (RENORM) {
    for (var j = 0u; j < K; j++) { S += b_probs[row + b_idx[t * K + j]]; }
    for (var j = 0u; j < K; j++) { dot_dw_w += b_dw[t * K + j] * b_probs[row + b_idx[t * K + j]] / S; }
  }
  // sum_c p_c g_p[c], split into the extra part (all c) and the picked part.
  var pg = 0.0;
  for (var e = 0u; e < E; e++) { pg += b_probs[row + e] * extra(row + e); }
  for (var j = 0u; j < K; j++) { pg += b_probs[row + b_idx[t * K + j]] * picked_grad(t, j, S, dot_dw_w); }
  for (var e = 0u; e < E; e++) {
    var g = extra(row + e);
    for (var j = 0u; j < K; j++) {
      if (b_idx[t * K + j] == e) { g += picked_grad(t, j, S, dot_dw_w); }
    }
    d_logits[row + e] = b_probs[row + e] * (g - pg);
  }
}
