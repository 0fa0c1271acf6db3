// The token dispatch plan from given router indices alone (test/support/dispatch-indices.ts buildDispatch),
// in 3 passes. The engine routes with the fused router + place_fused (shaders/dispatch.wgsl); this
// construction serves callers that choose the indices themselves (tests force routing patterns
// with it) and is a second, independent construction of the same plan. Tokens are cut into chunks of CHUNK;
// one invocation per (chunk, expert) counts, a scan turns counts into bases, and the same
// invocation layout then writes the positions.

// #include "grid"
// #include "dispatch-plan"

override CHUNK: u32; // tokens per (chunk, expert) invocation: test/support/dispatch-indices.ts CHUNK

// ---- count: chunk_count[c * E + e] = pairs in chunk c routed to e ----
@group(0) @binding(0) var<storage, read> c_idx: array<u32>;
@group(0) @binding(1) var<storage, read_write> c_chunk: array<u32>;

fn chunk_pairs(c: u32) -> vec2<u32> {
  let t0 = c * CHUNK;
  return vec2<u32>(t0 * pu.k, min(t0 + CHUNK, pu.n) * pu.k);
}

@compute @workgroup_size(64)
fn count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = folded_index(gid, nwg, 64u);
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
  let id = folded_index(gid, nwg, 64u);
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
