// RMSNorm over the last dim d of x [N, d] (HF LLaMA / Time-MoE): y = w * (x * rstd),
// rstd = 1 / sqrt(mean(x^2) + eps), accumulated in f32.
//   forward:     one workgroup per row; y [N, d], rstd [N] (saved for the backward)
//   backward_dx: one workgroup per row; dx = rstd*w*dy - rstd^3/d * x * sum(w*dy*x)
//   dw_partial:  partial[g, c] = sum over rows of chunk g of dy*x*rstd (column-parallel)
//   dw_reduce:   dw[c] = sum_g partial[g, c]  (deterministic, no float atomics)
//   forward_serial, backward_dx_serial: one invocation per row, no barriers (for CPU adapters
//                such as lavapipe, which run workgroup barriers slowly; ~10x faster there)
// {{WG}} is the workgroup size (a power of two) of the row kernels and of the column kernels.
// Storage types: {{TX}} for x, y and dx; {{TDY}} for dy (f32 or f16 each, independently). w, rstd,
// the dw partials and dw are always f32, and all math is f32: loads widen with f32(...), stores
// narrow with {{TX}}(...) (identities when the storage is f32).
{{ENABLES}}

// #include "grid"

struct Params {
  N: u32,        // rows
  d: u32,        // row length
  eps: f32,
  chunk: u32,    // rows per dw partial chunk
  chunks: u32,   // number of chunks = ceil(N / chunk)
  _p0: u32, _p1: u32, _p2: u32,
}

@group(1) @binding(0) var<uniform> u: Params;

const WG: u32 = {{WG}}u;
var<workgroup> red: array<f32, WG>;

// Tree-sum of one value per invocation; every invocation gets the total.
fn workgroupSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off = off >> 1u) {
    if (lid < off) { red[lid] = red[lid] + red[lid + off]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red may be reused right after
  return total;
}

// ---- forward
@group(0) @binding(0) var<storage, read> x: array<{{TX}}>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<{{TX}}>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.N) { return; } // uniform per workgroup: safe before barriers
  let o = row * u.d;
  var ss = 0.0;
  for (var c = lid; c < u.d; c += WG) {
    let v = f32(x[o + c]);
    ss = fma(v, v, ss);
  }
  let r = 1.0 / sqrt(workgroupSum(ss, lid) / f32(u.d) + u.eps);
  for (var c = lid; c < u.d; c += WG) {
    y[o + c] = {{TX}}(w[c] * (f32(x[o + c]) * r));
  }
  if (lid == 0u) { rstd[row] = r; }
}

// ---- backward: dx
@group(0) @binding(0) var<storage, read> b_dy: array<{{TDY}}>;
@group(0) @binding(1) var<storage, read> b_x: array<{{TX}}>;
@group(0) @binding(2) var<storage, read> b_w: array<f32>;
@group(0) @binding(3) var<storage, read> b_rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_dx: array<{{TX}}>;

@compute @workgroup_size(WG)
fn backward_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.N) { return; }
  let o = row * u.d;
  var s = 0.0;
  for (var c = lid; c < u.d; c += WG) {
    s = fma(b_w[c] * f32(b_dy[o + c]), f32(b_x[o + c]), s);
  }
  let total = workgroupSum(s, lid);
  let r = b_rstd[row];
  let k = r * r * r * total / f32(u.d);
  for (var c = lid; c < u.d; c += WG) {
    b_dx[o + c] = {{TX}}(r * b_w[c] * f32(b_dy[o + c]) - k * f32(b_x[o + c]));
  }
}

// ---- backward: dw, stage 1 (grid: x = column blocks, y = row chunks)
@group(0) @binding(0) var<storage, read> p_dy: array<{{TDY}}>;
@group(0) @binding(1) var<storage, read> p_x: array<{{TX}}>;
@group(0) @binding(2) var<storage, read> p_rstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> p_part: array<f32>;

@compute @workgroup_size(WG)
fn dw_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let g = gid.y;
  if (c >= u.d || g >= u.chunks) { return; }
  let r0 = g * u.chunk;
  let r1 = min(r0 + u.chunk, u.N);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    s = fma(f32(p_dy[r * u.d + c]) * f32(p_x[r * u.d + c]), p_rstd[r], s);
  }
  p_part[g * u.d + c] = s;
}

// ---- backward: dw, stage 2
@group(0) @binding(0) var<storage, read> q_part: array<f32>;
@group(0) @binding(1) var<storage, read_write> q_dw: array<f32>;

@compute @workgroup_size(WG)
fn dw_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.d) { return; }
  var s = 0.0;
  for (var g = 0u; g < u.chunks; g++) { s += q_part[g * u.d + c]; }
  q_dw[c] = s;
}

// ---- one invocation per row (same bindings as forward / backward_dx)
@compute @workgroup_size(WG)
fn forward_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = folded_index(gid, nwg, WG);
  if (row >= u.N) { return; }
  let o = row * u.d;
  var ss = 0.0;
  for (var c = 0u; c < u.d; c++) {
    let v = f32(x[o + c]);
    ss = fma(v, v, ss);
  }
  let r = 1.0 / sqrt(ss / f32(u.d) + u.eps);
  for (var c = 0u; c < u.d; c++) {
    y[o + c] = {{TX}}(w[c] * (f32(x[o + c]) * r));
  }
  rstd[row] = r;
}

@compute @workgroup_size(WG)
fn backward_dx_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = folded_index(gid, nwg, WG);
  if (row >= u.N) { return; }
  let o = row * u.d;
  var s = 0.0;
  for (var c = 0u; c < u.d; c++) {
    s = fma(b_w[c] * f32(b_dy[o + c]), f32(b_x[o + c]), s);
  }
  let r = b_rstd[row];
  let k = r * r * r * s / f32(u.d);
  for (var c = 0u; c < u.d; c++) {
    b_dx[o + c] = {{TX}}(r * b_w[c] * f32(b_dy[o + c]) - k * f32(b_x[o + c]));
  }
}
