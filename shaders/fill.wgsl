// Fill a buffer with one 32-bit pattern (zeros, NaN poison, a constant).
// #include "grid"

struct Params { bits: u32, words: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(1) @binding(0) var<uniform> u: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i < u.words) { dst[i] = u.bits; }
}
