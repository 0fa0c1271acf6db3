// Token dispatch: the permutation that puts every (token, slot) pair into expert-contiguous
// order, built on the GPU without readback (place_fused, after the router's forward_counts:
// routeAndDispatch, 2 dispatches in all), plus gather / combine and their backwards.
//
// Order inside an expert is by pair index t * k + j (token, then slot), so the row of pair p with
// expert e is offsets[e] + #{p' < p : idx[p'] == e}. Every output element has exactly one
// writer: deterministic, no atomics. Pairs whose in-expert rank reaches `cap` are dropped.
// (The plan from given indices, in 3 passes, is shaders/dispatch-indices.wgsl.)
//
// Slot ENABLES: `enable f16;` when a row kernel's storage is f16 (the plan kernels never are).
{{ENABLES}}

// #include "grid"
// #include "dispatch-plan"

// ---- place_fused: the scan and place from per-chunk counts, one invocation per chunk ----
// chunk_counts[e * chunks4 + c] (router forward_counts; chunks4 = chunks rounded up to a multiple
// of 4, zero-padded) counts the pairs of tokens [c * chunk, (c + 1) * chunk) routed to e.
// Invocation c sums the counts of all chunks (totals, hence offsets) and of the chunks before it
// (its base inside each expert), then walks its own pairs in order: the same rank as place.
// Nothing is shared between invocations, so there is no workgroup memory and no barrier (costly
// on CPU Vulkan); the price is chunks * E reads per invocation, which the host keeps small by
// sizing the chunks. Invocation 0 also writes counts, offsets and dropped.
// Grids are small (tens to hundreds of chunks), so workgroups are small too: they spread over
// more cores.
override FUSED_WG: u32; // invocations per place_fused workgroup: dispatch.ts FUSED_WG

@group(0) @binding(0) var<storage, read> f_idx: array<u32>;
@group(0) @binding(1) var<storage, read> f_chunk: array<vec4<u32>>; // [E, chunks4 / 4]
@group(0) @binding(2) var<storage, read_write> f_counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> f_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> f_dropped: array<u32>;
@group(0) @binding(5) var<storage, read_write> f_pos: array<u32>;
@group(0) @binding(6) var<storage, read_write> f_src: array<u32>;
@group(0) @binding(7) var<storage, read_write> f_pair: array<u32>;

@compute @workgroup_size(FUSED_WG)
fn place_fused(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = folded_index(gid, nwg, FUSED_WG);
  let invocations = max(pu.chunks, 1u); // N = 0 still needs counts and offsets written
  if (c >= invocations) { return; }
  let E = pu.e;
  var rank: array<u32, 64>; // pairs of expert e before this chunk, then the running rank
  var off: array<u32, 64>;  // pairs routed to e in all chunks, then the expert's first row
  let runs = (pu.chunks + 3u) / 4u; // vec4s per expert
  for (var e = 0u; e < E; e++) {
    // Expert-major counts, 4 chunks per load; one loop bound for every invocation.
    var before = vec4<u32>(0u);
    var all = vec4<u32>(0u);
    for (var q = 0u; q < runs; q++) {
      let v = f_chunk[e * runs + q];
      all += v;
      before += select(vec4<u32>(0u), v, vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(c));
    }
    rank[e] = before.x + before.y + before.z + before.w;
    off[e] = all.x + all.y + all.z + all.w;
  }
  var total = 0u;
  var dropped = 0u;
  for (var e = 0u; e < E; e++) {
    let routed = off[e];
    let kept = min(routed, pu.cap);
    if (c == 0u) { f_counts[e] = kept; f_offsets[e] = total; }
    off[e] = total;
    total += kept;
    dropped += routed - kept;
  }
  if (c == 0u) {
    f_offsets[E] = total;
    f_dropped[0] = dropped;
  }
  let t1 = min((c + 1u) * pu.chunk, pu.n);
  for (var t = c * pu.chunk; t < t1; t++) {
    for (var j = 0u; j < pu.k; j++) {
      let p = t * pu.k + j;
      let e = f_idx[p];
      let r = rank[e];
      rank[e] = r + 1u;
      if (r < pu.cap) {
        let row = off[e] + r;
        f_pos[p] = row;
        f_src[row] = t;
        f_pair[row] = p;
      } else {
        f_pos[p] = DROPPED;
      }
    }
  }
  // Rows past the last kept one (capacity mode only), strided over the invocations.
  for (var r = total + c; r < pu.n * pu.k; r += invocations) {
    f_src[r] = DROPPED;
    f_pair[r] = DROPPED;
  }
}

// ---- row kernels over [rows, d] ----
// Slot V: the math type of a row element, vec4<f32> when d % 4 == 0, else f32; ru.d counts V per row.
// Slots VA, VB: the storage types of the kernel's two row buffers (f32 or f16, V's width), read as
// V(buf[i]) and written as VB(v): storage may be f16, the math is f32.
// Slot HSUM: the sum of acc's lanes.
struct RowParams { n: u32, k: u32, d: u32, e: u32 }
@group(1) @binding(0) var<uniform> ru: RowParams;


// gather: xs[r, :] = x[src[r], :] for kept rows, 0 for rows past offsets[E]. x: VA, xs: VB (same dtype).
@group(0) @binding(0) var<storage, read> g_x: array<{{VA}}>;
@group(0) @binding(1) var<storage, read> g_src: array<u32>;
@group(0) @binding(2) var<storage, read> g_offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> g_xs: array<{{VB}}>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  let rows = ru.n * ru.k;
  if (i >= rows * ru.d) { return; }
  let r = i / ru.d;
  let col = i % ru.d;
  var v = {{V}}(0.0);
  if (r < g_offsets[ru.e]) { v = {{V}}(g_x[g_src[r] * ru.d + col]); }
  g_xs[i] = {{VB}}(v);
}

// Per-token sums over the token's k rows (gather backward, combine forward), skipping drops:
// out[t, :] = sum_j scale(t, j) * rows[pos[t, j], :]. Slot SCALE: `t_w[p]` or `1.0`.
// rows: VA, out: VB (same dtype); the k terms are summed in f32 and stored once.
@group(0) @binding(0) var<storage, read> t_rows: array<{{VA}}>;
@group(0) @binding(1) var<storage, read> t_pos: array<u32>;
@group(0) @binding(2) var<storage, read_write> t_out: array<{{VB}}>;
@group(0) @binding(3) var<storage, read> t_w: array<f32>;

fn pair_scale(p: u32) -> f32 { return {{SCALE}}; }

@compute @workgroup_size(256)
fn token_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i >= ru.n * ru.d) { return; }
  let t = i / ru.d;
  let col = i % ru.d;
  var acc = {{V}}(0.0);
  for (var j = 0u; j < ru.k; j++) {
    let p = t * ru.k + j;
    let row = t_pos[p];
    if (row != DROPPED) { acc += pair_scale(p) * {{V}}(t_rows[row * ru.d + col]); }
  }
  t_out[i] = {{VB}}(acc);
}

// combine backward, d_ys[r, :] = w[pair(r)] * dy[src(r), :] for kept rows, 0 past offsets[E].
// dy: VA, d_ys: VB (the dtype of ys).
@group(0) @binding(0) var<storage, read> b_dy: array<{{VA}}>;
@group(0) @binding(1) var<storage, read> b_w: array<f32>;
@group(0) @binding(2) var<storage, read> b_pair: array<u32>;
@group(0) @binding(3) var<storage, read> b_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> b_dys: array<{{VB}}>;

@compute @workgroup_size(256)
fn combine_dys(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i >= ru.n * ru.k * ru.d) { return; }
  let r = i / ru.d;
  let col = i % ru.d;
  var v = {{V}}(0.0);
  if (r < b_offsets[ru.e]) {
    let p = b_pair[r];
    v = b_w[p] * {{V}}(b_dy[(p / ru.k) * ru.d + col]);
  }
  b_dys[i] = {{VB}}(v);
}

// combine backward, d_w[t, j] = dot(dy[t, :], ys[pos[t, j], :]); 0 for dropped pairs. dy: VA, ys: VB.
@group(0) @binding(0) var<storage, read> w_dy: array<{{VA}}>;
@group(0) @binding(1) var<storage, read> w_ys: array<{{VB}}>;
@group(0) @binding(2) var<storage, read> w_pos: array<u32>;
@group(0) @binding(3) var<storage, read_write> w_dw: array<f32>;

@compute @workgroup_size(64)
fn combine_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = folded_index(gid, nwg, 64u);
  if (p >= ru.n * ru.k) { return; }
  let row = w_pos[p];
  var acc = {{V}}(0.0);
  if (row != DROPPED) {
    let a = (p / ru.k) * ru.d;
    let b = row * ru.d;
    for (var c = 0u; c < ru.d; c++) { acc += {{V}}(w_dy[a + c]) * {{V}}(w_ys[b + c]); }
  }
  w_dw[p] = {{HSUM}};
}
