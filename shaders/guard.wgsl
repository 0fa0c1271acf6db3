// Non-finite guard: per tensor (count of NaN/+-Inf, min, max, mean of the finite values).
// WGSL has no isnan/isinf: a value is non-finite when its f32 exponent bits are all ones.
//
// entry `partial`: up to 14 tensors per dispatch (bindings 2..K+1, generated into slot
// MANY_DECLS; slot MANY_CASES holds one loop per tensor). Workgroup g serves tensor k with
// first[k] <= g < first[k+1] and writes parts[outBase + g]; the tensor's chunk-0 workgroup also
// records where its partials are in spans[tBase + k], so ONE `finalize` dispatch can then reduce
// every tensor of every partial dispatch without the host knowing anything at run time.
// entry `finalize`: one 64-lane workgroup per tensor -> stats[t] = (bad, min, max, mean).
// entry `total_bad`: sum of column 0 of stats [T, 4] -> out[0] (a skip flag for AdamW).
{{ENABLE}}
const WG: u32 = 256u;
const FWG: u32 = 64u;
const BIG: f32 = 3.4028234663852886e38; // FLT_MAX: identity for min / max over finite values

struct Part { bad: u32, mn: f32, mx: f32, sum: f32 }

struct ManyParams {
  count: u32,
  chunkLen: u32,
  outBase: u32,
  total: u32,
  sizes: array<vec4<u32>, 4>,
  first: array<vec4<u32>, 4>,
  tBase: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

struct FinalParams { tensors: u32, nanBits: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read_write> parts: array<Part>;
@group(0) @binding(1) var<storage, read_write> spans: array<vec4<u32>>;
{{MANY_DECLS}}
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(0) var<storage, read> stats_in: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> flag: array<f32>;
@group(1) @binding(0) var<uniform> um: ManyParams;
@group(1) @binding(0) var<uniform> uf: FinalParams;

var<workgroup> w_bad: array<u32, WG>;
var<workgroup> w_mn: array<f32, WG>;
var<workgroup> w_mx: array<f32, WG>;
var<workgroup> w_sum: array<f32, WG>;

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// Tree over the first `width` lanes; lane 0 ends with the combined value. Uniform control flow.
fn tree(lidx: u32, width: u32) {
  for (var s = width / 2u; s > 0u; s = s / 2u) {
    if (lidx < s) {
      w_bad[lidx] += w_bad[lidx + s];
      w_mn[lidx] = min(w_mn[lidx], w_mn[lidx + s]);
      w_mx[lidx] = max(w_mx[lidx], w_mx[lidx + s]);
      w_sum[lidx] += w_sum[lidx + s];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= um.total) { return; }
  var k = 0u;
  for (var t = 1u; t < um.count; t++) {
    if (g >= um.first[t / 4u][t % 4u]) { k = t; }
  }
  let f0 = um.first[k / 4u][k % 4u];
  let size = um.sizes[k / 4u][k % 4u];
  let e0 = (g - f0) * um.chunkLen;
  let e1 = min(e0 + um.chunkLen, size);
  var bad = 0u;
  var mn = BIG;
  var mx = -BIG;
  var sum = 0.0;
  switch k {
{{MANY_CASES}}
    default: {}
  }
  w_bad[lidx] = bad;
  w_mn[lidx] = mn;
  w_mx[lidx] = mx;
  w_sum[lidx] = sum;
  workgroupBarrier();
  tree(lidx, WG);
  if (lidx == 0u) {
    parts[um.outBase + g] = Part(w_bad[0], w_mn[0], w_mx[0], w_sum[0]);
    if (g == f0) {
      let nChunks = select(um.total, um.first[(k + 1u) / 4u][(k + 1u) % 4u], k + 1u < um.count) - f0;
      spans[um.tBase + k] = vec4<u32>(um.outBase + f0, nChunks, size, 0u);
    }
  }
}

@compute @workgroup_size(64)
fn finalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= uf.tensors) { return; }
  let m = spans[t];
  var bad = 0u;
  var mn = BIG;
  var mx = -BIG;
  var sum = 0.0;
  for (var p = lidx; p < m.y; p += FWG) {
    let q = parts[m.x + p];
    bad += q.bad;
    mn = min(mn, q.mn);
    mx = max(mx, q.mx);
    sum += q.sum;
  }
  w_bad[lidx] = bad;
  w_mn[lidx] = mn;
  w_mx[lidx] = mx;
  w_sum[lidx] = sum;
  workgroupBarrier();
  tree(lidx, FWG);
  if (lidx == 0u) {
    let finite = m.z - w_bad[0];
    if (finite == 0u) {
      // No finite value (all NaN/Inf, or an empty tensor): min, max and mean are NaN.
      let nan = bitcast<f32>(uf.nanBits);
      stats[t] = vec4<f32>(f32(w_bad[0]), nan, nan, nan);
    } else {
      stats[t] = vec4<f32>(f32(w_bad[0]), w_mn[0], w_mx[0], w_sum[0] / f32(finite));
    }
  }
}

@compute @workgroup_size(256)
fn total_bad(@builtin(local_invocation_index) lidx: u32) {
  var s = 0.0;
  for (var t = lidx; t < uf.tensors; t += WG) { s += stats_in[t].x; }
  w_sum[lidx] = s;
  workgroupBarrier();
  for (var s2 = WG / 2u; s2 > 0u; s2 = s2 / 2u) {
    if (lidx < s2) { w_sum[lidx] += w_sum[lidx + s2]; }
    workgroupBarrier();
  }
  if (lidx == 0u) { flag[0] = w_sum[0]; }
}
