// Token dispatch: the permutation that puts every (token, slot) pair into expert-contiguous
// order, built on the GPU without readback, plus gather / combine and their backwards.
//
// Order inside an expert is by pair index t * k + j (token, then slot), so the row of pair p with
// expert e is offsets[e] + #{p' < p : idx[p'] == e}. Tokens are cut into chunks of
// CHUNK; one invocation per (chunk, expert) counts, a scan turns counts into bases, and the
// same invocation layout then writes the positions. Every output element has exactly one
// writer: deterministic, no atomics. Pairs whose in-expert rank reaches `cap` are dropped.

const CHUNK: u32 = 64u;
const DROPPED: u32 = 0xffffffffu;

struct PlanParams { n: u32, e: u32, k: u32, cap: u32, chunks: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(1) @binding(0) var<uniform> pu: PlanParams;

fn flat64(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

// ---- count: chunk_count[c * E + e] = pairs in chunk c routed to e ----
@group(0) @binding(0) var<storage, read> c_idx: array<u32>;
@group(0) @binding(1) var<storage, read_write> c_chunk: array<u32>;

fn chunk_pairs(c: u32) -> vec2<u32> {
  let t0 = c * CHUNK;
  return vec2<u32>(t0 * pu.k, min(t0 + CHUNK, pu.n) * pu.k);
}

@compute @workgroup_size(64)
fn count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat64(gid, nwg);
  if (id >= pu.chunks * pu.e) { return; }
  let c = id / pu.e;
  let e = id % pu.e;
  let r = chunk_pairs(c);
  var n = 0u;
  for (var p = r.x; p < r.y; p++) { n += select(0u, 1u, c_idx[p] == e); }
  c_chunk[id] = n;
}

// ---- scan: one workgroup; invocation e walks the chunks of expert e ----
// chunk counts become exclusive in-expert bases in place; counts, offsets, dropped are written,
// and sorted rows past the last kept row get DROPPED in src / row_pair.
@group(0) @binding(0) var<storage, read_write> s_chunk: array<u32>;
@group(0) @binding(1) var<storage, read_write> s_counts: array<u32>;  // [E] kept rows per expert
@group(0) @binding(2) var<storage, read_write> s_offsets: array<u32>; // [E + 1]
@group(0) @binding(3) var<storage, read_write> s_dropped: array<u32>; // [1]
@group(0) @binding(4) var<storage, read_write> s_src: array<u32>;     // [N * k]
@group(0) @binding(5) var<storage, read_write> s_pair: array<u32>;    // [N * k]

var<workgroup> kept: array<u32, 64>;
var<workgroup> routed: array<u32, 64>;

@compute @workgroup_size(64)
fn scan(@builtin(local_invocation_index) e: u32) {
  if (e < pu.e) {
    var run = 0u;
    for (var c = 0u; c < pu.chunks; c++) {
      let i = c * pu.e + e;
      let n = s_chunk[i];
      s_chunk[i] = run;
      run += n;
    }
    routed[e] = run;
    kept[e] = min(run, pu.cap);
  }
  workgroupBarrier();
  // Serial sums over <= 64 experts: cheaper than a tree, and identical on every invocation.
  var total = 0u;
  var dropped = 0u;
  for (var i = 0u; i < pu.e; i++) {
    if (i == e) { s_offsets[e] = total; s_counts[e] = kept[e]; }
    total += kept[i];
    dropped += routed[i] - kept[i];
  }
  if (e == 0u) {
    s_offsets[pu.e] = total;
    s_dropped[0] = dropped;
  }
  for (var r = total + e; r < pu.n * pu.k; r += 64u) {
    s_src[r] = DROPPED;
    s_pair[r] = DROPPED;
  }
}

// ---- place: pos of every pair, src / row_pair of every kept row ----
@group(0) @binding(0) var<storage, read> p_idx: array<u32>;
@group(0) @binding(1) var<storage, read> p_chunk: array<u32>;
@group(0) @binding(2) var<storage, read> p_offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> p_pos: array<u32>;  // [N * k]
@group(0) @binding(4) var<storage, read_write> p_src: array<u32>;
@group(0) @binding(5) var<storage, read_write> p_pair: array<u32>;

@compute @workgroup_size(64)
fn place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat64(gid, nwg);
  if (id >= pu.chunks * pu.e) { return; }
  let c = id / pu.e;
  let e = id % pu.e;
  let r = chunk_pairs(c);
  var rank = p_chunk[id];
  let base = p_offsets[e];
  for (var p = r.x; p < r.y; p++) {
    if (p_idx[p] != e) { continue; }
    if (rank < pu.cap) {
      let row = base + rank;
      p_pos[p] = row;
      p_src[row] = p / pu.k;
      p_pair[row] = p;
    } else {
      p_pos[p] = DROPPED;
    }
    rank++;
  }
}

// ---- row kernels over [rows, d] ----
// Slot V: the row element type, vec4<f32> when d % 4 == 0, else f32; ru.d counts V per row.
// Slot HSUM: the sum of acc's lanes.
struct RowParams { n: u32, k: u32, d: u32, e: u32 }
@group(1) @binding(0) var<uniform> ru: RowParams;

fn flat256(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// gather: xs[r, :] = x[src[r], :] for kept rows, 0 for rows past offsets[E].
@group(0) @binding(0) var<storage, read> g_x: array<{{V}}>;
@group(0) @binding(1) var<storage, read> g_src: array<u32>;
@group(0) @binding(2) var<storage, read> g_offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> g_xs: array<{{V}}>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat256(gid, nwg);
  let rows = ru.n * ru.k;
  if (i >= rows * ru.d) { return; }
  let r = i / ru.d;
  let col = i % ru.d;
  var v = {{V}}(0.0);
  if (r < g_offsets[ru.e]) { v = g_x[g_src[r] * ru.d + col]; }
  g_xs[i] = v;
}

// Per-token sums over the token's k rows (gather backward, combine forward), skipping drops:
// out[t, :] = sum_j scale(t, j) * rows[pos[t, j], :]. Slot SCALE: `t_w[p]` or `1.0`.
@group(0) @binding(0) var<storage, read> t_rows: array<{{V}}>;
@group(0) @binding(1) var<storage, read> t_pos: array<u32>;
@group(0) @binding(2) var<storage, read_write> t_out: array<{{V}}>;
@group(0) @binding(3) var<storage, read> t_w: array<f32>;

fn pair_scale(p: u32) -> f32 { return {{SCALE}}; }

@compute @workgroup_size(256)
fn token_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat256(gid, nwg);
  if (i >= ru.n * ru.d) { return; }
  let t = i / ru.d;
  let col = i % ru.d;
  var acc = {{V}}(0.0);
  for (var j = 0u; j < ru.k; j++) {
    let p = t * ru.k + j;
    let row = t_pos[p];
    if (row != DROPPED) { acc += pair_scale(p) * t_rows[row * ru.d + col]; }
  }
  t_out[i] = acc;
}

// combine backward, d_ys[r, :] = w[pair(r)] * dy[src(r), :] for kept rows, 0 past offsets[E].
@group(0) @binding(0) var<storage, read> b_dy: array<{{V}}>;
@group(0) @binding(1) var<storage, read> b_w: array<f32>;
@group(0) @binding(2) var<storage, read> b_pair: array<u32>;
@group(0) @binding(3) var<storage, read> b_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> b_dys: array<{{V}}>;

@compute @workgroup_size(256)
fn combine_dys(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat256(gid, nwg);
  if (i >= ru.n * ru.k * ru.d) { return; }
  let r = i / ru.d;
  let col = i % ru.d;
  var v = {{V}}(0.0);
  if (r < b_offsets[ru.e]) {
    let p = b_pair[r];
    v = b_w[p] * b_dy[(p / ru.k) * ru.d + col];
  }
  b_dys[i] = v;
}

// combine backward, d_w[t, j] = dot(dy[t, :], ys[pos[t, j], :]); 0 for dropped pairs.
@group(0) @binding(0) var<storage, read> w_dy: array<{{V}}>;
@group(0) @binding(1) var<storage, read> w_ys: array<{{V}}>;
@group(0) @binding(2) var<storage, read> w_pos: array<u32>;
@group(0) @binding(3) var<storage, read_write> w_dw: array<f32>;

@compute @workgroup_size(64)
fn combine_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat64(gid, nwg);
  if (p >= ru.n * ru.k) { return; }
  let row = w_pos[p];
  var acc = {{V}}(0.0);
  if (row != DROPPED) {
    let a = (p / ru.k) * ru.d;
    let b = row * ru.d;
    for (var c = 0u; c < ru.d; c++) { acc += w_dy[a + c] * w_ys[b + c]; }
  }
  w_dw[p] = {{HSUM}};
}
