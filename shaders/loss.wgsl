// Losses: masked Huber (Time-MoE), its horizon target/mask construction, and cross-entropy.
// Entry points (each binds only its own variables; binding numbers are per entry point):
//   huber_partial   pred, target, mask -> per-thread (Σ mask*h, Σ mask)
//   finalize        partial pairs -> loss[0] = Σa / Σb (0 when Σb = 0), count[0] = Σb
//   huber_backward  d_pred = gout * mask * clamp(r, -δ, δ) / count
//   horizon_targets labels, loss_mask [B,T] -> target, mask [B,T,h]
//   ce_rows         one thread per row: (m, log Σ exp(x - m)) and (row loss, counted)
//   ce_backward     d_logits = gout * (softmax - onehot) / count
// Sums are two-pass and deterministic (fixed order), no float atomics.

// #include "grid"

override WG: u32;   // threads of the reduction / elementwise kernels: loss.ts WG
const F32_LOWEST: f32 = -3.4028234e38;

// ---------------------------------------------------------------- Huber, forward pass 1
struct HuberParams { n: u32, stride: u32, delta: f32, _p0: u32 }
@group(0) @binding(0) var<storage, read> hp_pred: array<f32>;
@group(0) @binding(1) var<storage, read> hp_target: array<f32>;
@group(0) @binding(2) var<storage, read> hp_mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> hp_partial: array<vec2<f32>>;
@group(1) @binding(0) var<uniform> hp: HuberParams;

fn huber(r: f32, delta: f32) -> f32 {
  let a = abs(r);
  return select(delta * (a - 0.5 * delta), 0.5 * r * r, a <= delta);
}

@compute @workgroup_size(WG)
fn huber_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  // One partial per thread, grid-stride (the grid is capped, see loss.ts): no barriers, which
  // lavapipe runs ~3x faster than a per-workgroup tree; the single finalize workgroup sums them.
  var acc = vec2<f32>(0.0, 0.0);
  for (var i = gid.x; i < hp.n; i = i + hp.stride) {
    let m = hp_mask[i];
    if (m != 0.0) {
      acc = acc + vec2<f32>(m * huber(hp_pred[i] - hp_target[i], hp.delta), m);
    }
  }
  hp_partial[gid.x] = acc;
}

// ---------------------------------------------------------------- pass 2: one workgroup
var<workgroup> red2: array<vec2<f32>, WG>;

struct FinalizeParams { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<storage, read> fz_partial: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read_write> fz_loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> fz_count: array<f32>;
@group(1) @binding(0) var<uniform> fz: FinalizeParams;

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var acc = vec2<f32>(0.0, 0.0);
  for (var i = lid; i < fz.n; i = i + WG) { acc = acc + fz_partial[i]; }
  red2[lid] = acc;
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red2[lid] = red2[lid] + red2[lid + s]; }
  }
  if (lid == 0u) {
    let t = red2[0];
    // Σ mask = 0 (or every CE target ignored): loss 0 rather than PyTorch's 0/0 = NaN.
    fz_loss[0] = select(0.0, t.x / t.y, t.y > 0.0);
    fz_count[0] = t.y;
  }
}

// Flattened index of a 2-D-folded elementwise grid (at most maxComputeWorkgroupsPerDimension per dimension: grid.ts).

// ---------------------------------------------------------------- Huber backward
@group(0) @binding(0) var<storage, read> hb_pred: array<f32>;
@group(0) @binding(1) var<storage, read> hb_target: array<f32>;
@group(0) @binding(2) var<storage, read> hb_mask: array<f32>;
@group(0) @binding(3) var<storage, read> hb_count: array<f32>;
@group(0) @binding(4) var<storage, read> hb_gout: array<f32>;
@group(0) @binding(5) var<storage, read_write> hb_dpred: array<f32>;
@group(1) @binding(0) var<uniform> hb: HuberParams;

@compute @workgroup_size(WG)
fn huber_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= hb.n) { return; }
  let m = hb_mask[i];
  let c = hb_count[0];
  var d = 0.0;
  if (m != 0.0 && c > 0.0) {
    // h'(r) = clamp(r, -δ, δ); at |r| = δ both branches agree (PyTorch takes the quadratic one).
    let r = hb_pred[i] - hb_target[i];
    d = hb_gout[0] * m * clamp(r, -hb.delta, hb.delta) / c;
  }
  hb_dpred[i] = d;
}

// ---------------------------------------------------------------- Time-MoE horizon unfold
struct HorizonParams { n: u32, t: u32, h: u32, _p0: u32 }
@group(0) @binding(0) var<storage, read> hz_labels: array<f32>;
@group(0) @binding(1) var<storage, read> hz_lmask: array<f32>;
@group(0) @binding(2) var<storage, read_write> hz_target: array<f32>;
@group(0) @binding(3) var<storage, read_write> hz_mask: array<f32>;
@group(1) @binding(0) var<uniform> hz: HorizonParams;

@compute @workgroup_size(WG)
fn horizon_targets(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= hz.n) { return; }
  let j = i % hz.h;
  let bt = i / hz.h;
  let t = bt % hz.t;
  // Future point t+j of the same series; past the end it is zero padding with mask 0.
  if (t + j < hz.t) {
    hz_target[i] = hz_labels[bt + j];
    hz_mask[i] = hz_lmask[bt + j];
  } else {
    hz_target[i] = 0.0;
    hz_mask[i] = 0.0;
  }
}

// ---------------------------------------------------------------- cross-entropy rows
// nan_bits = 0x7fc00000 from the host: WGSL rejects a NaN constant expression.
struct CeParams { n: u32, c: u32, ignore_index: i32, nan_bits: u32 }
@group(0) @binding(0) var<storage, read> cr_logits: array<f32>;
@group(0) @binding(1) var<storage, read> cr_targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> cr_rows: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> cr_stats: array<vec2<f32>>;
@group(1) @binding(0) var<uniform> ce: CeParams;

// One thread per row, two passes over it (max, then s = Σ exp(x - max): exp only sees arguments
// <= 0). No barriers: on lavapipe this ran 3-200x faster than a workgroup per row with tree
// reductions (4096x280: 2.3 vs 39 ms; 64x8000: 1.1 vs 1.7 ms). A real GPU may want the latter for
// few long rows.
@compute @workgroup_size(WG)
fn ce_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = folded_index(gid, nwg, WG);
  if (row >= ce.n) { return; }
  let base = row * ce.c;
  var m = F32_LOWEST;
  for (var j = 0u; j < ce.c; j = j + 1u) { m = max(m, cr_logits[base + j]); }
  var s = 0.0;
  // A NaN logit may be dropped by max() but not by this sum: the row loss becomes NaN.
  for (var j = 0u; j < ce.c; j = j + 1u) { s = s + exp(cr_logits[base + j] - m); }
  let log_s = log(s);
  cr_stats[row] = vec2<f32>(m, log_s);
  let t = cr_targets[row];
  if (t == ce.ignore_index) {
    cr_rows[row] = vec2<f32>(0.0, 0.0);
  } else if (t < 0 || u32(t) >= ce.c) {
    // Out-of-range target: PyTorch raises; a GPU kernel cannot, so make it loud with NaN.
    cr_rows[row] = vec2<f32>(bitcast<f32>(ce.nan_bits), 1.0);
  } else {
    // loss = lse - x_t = (m - x_t) + log s: no cancellation against a large m (logits ~1e4).
    cr_rows[row] = vec2<f32>((m - cr_logits[base + u32(t)]) + log_s, 1.0);
  }
}

// ---------------------------------------------------------------- cross-entropy backward
@group(0) @binding(0) var<storage, read> cb_logits: array<f32>;
@group(0) @binding(1) var<storage, read> cb_targets: array<i32>;
@group(0) @binding(2) var<storage, read> cb_stats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> cb_count: array<f32>;
@group(0) @binding(4) var<storage, read> cb_gout: array<f32>;
@group(0) @binding(5) var<storage, read_write> cb_dlogits: array<f32>;
@group(1) @binding(0) var<uniform> cb: CeParams;

@compute @workgroup_size(WG)
fn ce_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= cb.n * cb.c) { return; }
  let row = i / cb.c;
  let j = i % cb.c;
  let t = cb_targets[row];
  let cnt = cb_count[0];
  var d = 0.0;
  if (t != cb.ignore_index && cnt > 0.0) {
    let st = cb_stats[row];
    let p = exp((cb_logits[i] - st.x) - st.y);
    let onehot = select(0.0, 1.0, t >= 0 && u32(t) == j);
    d = cb_gout[0] * (p - onehot) / cnt;
    // Out-of-range target: NaN, like its loss (ce_rows).
    if (t < 0 || u32(t) >= cb.c) { d = bitcast<f32>(cb.nan_bits); }
  }
  cb_dlogits[i] = d;
}
