// Fused causal multi-head attention (scale 1/sqrt(hd)), forward and backward, no float atomics.
// q, k, v, o, dO, dq, dk, dv: [B, T, H*hd] row-major, stored as {{VT}} vectors ({{NV}} per head;
// dO as {{VDO}}); lse, D: [B, H, T] f32. Registers and math are f32: the generated blocks widen
// f16 loads and narrow f16 stores. Every entry point: one invocation per (b, h, row); grid
// (ceil(T/WG), H, B).
//   forward:     query row t: online softmax over keys 0..t; o row and lse = logsumexp of scores.
//   backward_q:  query row t: D = rowsum(dO*O) (written out), dq = scale * sum_j P(dP - D) k_j.
//   backward_kv: key row j, queries i >= j: dv = sum_i P dO_i, dk = scale * sum_i P(dP - D) q_i.
// Loops run over the causal range of each lane (0..t, or T-1 down to j): a workgroup's lanes
// start together and read the same row at each step. (Bounds shared by the whole workgroup plus
// a select mask measured no faster on lavapipe.) Sums over keys (queries in backward_kv) are
// two-level: partial sums over aligned blocks of BLK rows, added to totals after each block, so no
// f32 accumulator adds T terms in a line (docs/KERNELS.md, "Accuracy of long sums").
// P = exp(s - lse) is recomputed from the saved lse. The {{...}} blocks come from
// src/kernels/attention.ts: for hd <= 64 straight-line code over NV named registers (Tint does not
// unroll loops), for larger heads loops over private arrays bounded by the runtime u.nv (a
// constant bound gets unrolled by the driver, and lavapipe then needs minutes to compile).
{{ENABLES}}

// #include "attention-common"

const WG: u32 = {{WG}}u;
const NV: u32 = {{NV}}u;
const BLK: u32 = {{BLK}}u;

// ------------------------------------------------------------------ forward
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let t = wid.x * WG + lid;
  if (t >= u.T) { return; } // no barriers follow: an early exit is fine
  let qo = rowAt(b, t, h);
  let scale = u.scale;
{{FWD_LOAD_Q}}
{{FWD_INIT}}
  var m = -3.0e38;  // running max
  var mt = -3.0e38; // the max the totals are relative to
  var l = 0.0;
  var lb = 0.0;
  for (var j0 = 0u; j0 <= t; j0 += BLK) { // causal: keys 0..t, in blocks
    let je = min(j0 + BLK, t + 1u);
    for (var j = j0; j < je; j++) {
      let ko = rowAt(b, j, h);
{{FWD_SCORE}}
// #include "attention-step"
    }
// #include "attention-fold"
  }
  let inv = 1.0 / l;
{{FWD_STORE}}
  flse[statAt(b, t, h)] = m + log(l);
}

// ------------------------------------------------------------------ backward: dq (and D)
@compute @workgroup_size(WG)
fn backward_q(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let t = wid.x * WG + lid;
  if (t >= u.T) { return; }
  let qo = rowAt(b, t, h);
  let scale = u.scale;
{{BQ_LOAD}}
{{BQ_D}}
  let L = glse[statAt(b, t, h)];
{{BQ_INIT}}
  for (var j0 = 0u; j0 <= t; j0 += BLK) {
    let je = min(j0 + BLK, t + 1u);
    for (var j = j0; j < je; j++) {
      let ko = rowAt(b, j, h);
{{BQ_LOAD_K}}
{{BQ_SCORE_DP}}
      let ds = exp(s - L) * (dp - D);
{{BQ_UPDATE}}
    }
{{BQ_FOLD}}
  }
{{BQ_STORE}}
  gD[statAt(b, t, h)] = D;
}

// ------------------------------------------------------------------ backward: dk, dv
@compute @workgroup_size(WG)
fn backward_kv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let j = wid.x * WG + lid;
  if (j >= u.T) { return; }
  let ko = rowAt(b, j, h);
  let scale = u.scale;
{{BKV_LOAD}}
{{BKV_INIT}}
  // Queries T-1 down to j, so a workgroup's lanes read the same row together; blocks [i0, i1)
  // aligned to multiples of BLK, the last one cut at j.
  for (var i1 = u.T; i1 > j; ) {
    let i0 = max(((i1 - 1u) / BLK) * BLK, j);
    for (var i = i1; i > i0; ) {
      i--;
      let qo = rowAt(b, i, h);
      let st = statAt(b, i, h);
{{BKV_LOAD_Q}}
{{BKV_SCORE_DP}}
      let p = exp(s - hlse[st]);
      let ds = p * (dp - hD[st]);
{{BKV_UPDATE}}
    }
{{BKV_FOLD}}
    i1 = i0;
  }
{{BKV_STORE}}
}
