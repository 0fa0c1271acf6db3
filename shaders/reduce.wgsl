// Reductions, accumulated in f32 (no float atomics anywhere: per-thread sums, then a tree in
// workgroup memory, then a further pass over per-workgroup partials where needed).
//
// entry `axis`: x viewed as [outer, n, inner], reduced over n. The grid is
// outer x innerTiles x chunks workgroups (folded to 2-D); a workgroup is TI inner lanes x TN
// lanes along n and covers one chunk of n. With chunks == 1 it writes out[o, i] * scale;
// otherwise partials [outer, chunks, inner], which the host reduces again over chunks.
//   slot TX slot TW  element types of x and w; slot ENABLE "enable f16;" or empty
//   slot LOAD body of fn load(k: u32) -> f32, the value summed at flat index k
//            (f32(x[k]), or f32(x[k]) * f32(w[k]) for the backward of a broadcast mul)
//
// entry `many_sumsq`: sum of squares of up to 15 tensors per dispatch (the global grad norm).
// Workgroup g belongs to the tensor k with first[k] <= g < first[k+1]; it squares and sums
// chunk g - first[k] of that tensor and writes partials[outBase + g].
//   slot MANY_DECLS the tensors' bindings 1..K, slot MANY_CASES one switch case per tensor
{{ENABLE}}
// #include "grid"

override TI: u32 = 1u;
const WG: u32 = 256u;

struct AxisParams {
  outer: u32,
  n: u32,
  inner: u32,
  chunks: u32,
  chunkLen: u32,
  innerTiles: u32,
  total: u32,   // outer * innerTiles * chunks workgroups
  _p0: u32,
  scale: f32,
  _p1: f32,
  _p2: f32,
  _p3: f32,
}

struct ManyParams {
  count: u32,     // tensors in this dispatch
  chunkLen: u32,  // elements per workgroup
  outBase: u32,   // first partial slot of this dispatch
  total: u32,     // workgroups in this dispatch
  sizes: array<vec4<u32>, 4>,  // element count of tensor k at [k / 4][k % 4]
  first: array<vec4<u32>, 4>,  // first workgroup of tensor k
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<{{TX}}>;
@group(0) @binding(2) var<storage, read> w: array<{{TW}}>;
{{MANY_DECLS}}
@group(1) @binding(0) var<uniform> u: AxisParams;
@group(1) @binding(0) var<uniform> um: ManyParams;

var<workgroup> red: array<f32, WG>;

fn load(k: u32) -> f32 {
  {{LOAD}}
}

@compute @workgroup_size(256)
fn axis(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let lin = wid.x + wid.y * nwg.x;
  if (lin >= u.total) { return; } // uniform across the workgroup: barriers stay legal
  let tn = WG / TI;
  let c = lin % u.chunks;
  let r = lin / u.chunks;
  let o = r / u.innerTiles;
  let i = (r % u.innerTiles) * TI + lidx % TI;
  let ln = lidx / TI;
  let j0 = c * u.chunkLen;
  let j1 = min(j0 + u.chunkLen, u.n);
  var acc = 0.0;
  if (i < u.inner) {
    for (var j = j0 + ln; j < j1; j += tn) {
      acc += load((o * u.n + j) * u.inner + i);
    }
  }
  red[lidx] = acc;
  workgroupBarrier();
  for (var s = tn / 2u; s > 0u; s = s / 2u) {
    if (ln < s) { red[lidx] += red[lidx + s * TI]; }
    workgroupBarrier();
  }
  if (ln == 0u && i < u.inner) {
    if (u.chunks == 1u) {
      out[o * u.inner + i] = red[lidx] * u.scale;
    } else {
      out[(o * u.chunks + c) * u.inner + i] = red[lidx];
    }
  }
}

// entry `axis_serial`: one thread per (output (o, i), chunk c), summing chunk c of n serially
// into out[o, c, i]: no workgroup memory and no barriers, which lavapipe executes slowly (~10 us
// per barrier per workgroup). With chunks > 1 a further pass sums the chunks.
@compute @workgroup_size(256)
fn axis_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = folded_index(gid, nwg, WG);
  if (k >= u.outer * u.chunks * u.inner) { return; }
  let i = k % u.inner;
  let c = (k / u.inner) % u.chunks;
  let o = k / (u.inner * u.chunks);
  let j0 = c * u.chunkLen;
  let j1 = min(u.n, j0 + u.chunkLen);
  var acc = 0.0;
  for (var j = j0; j < j1; j++) {
    acc += load((o * u.n + j) * u.inner + i);
  }
  out[k] = acc * u.scale;
}

@compute @workgroup_size(256)
fn many_sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= um.total) { return; }
  var k = 0u;
  for (var t = 1u; t < um.count; t++) {
    if (g >= um.first[t / 4u][t % 4u]) { k = t; }
  }
  let size = um.sizes[k / 4u][k % 4u];
  let e0 = (g - um.first[k / 4u][k % 4u]) * um.chunkLen;
  let e1 = min(e0 + um.chunkLen, size);
  var acc = 0.0;
  switch k {
{{MANY_CASES}}
    default: {}
  }
  red[lidx] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lidx < s) { red[lidx] += red[lidx + s]; }
    workgroupBarrier();
  }
  if (lidx == 0u) { out[um.outBase + g] = red[0]; }
}
