// Backward of a mean over the middle axis of [outer, n, inner]: dx[o, j, i] = scale * dy[o, i].
// #include "grid"

struct Params { outer: u32, n: u32, inner: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(1) @binding(0) var<uniform> u: Params;

@compute @workgroup_size(256)
fn expand(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = folded_index(gid, nwg, 256u);
  let total = u.outer * u.n * u.inner;
  if (idx >= total) { return; }
  let i = idx % u.inner;
  let o = idx / (u.n * u.inner);
  dx[idx] = u.scale * dy[o * u.inner + i];
}
