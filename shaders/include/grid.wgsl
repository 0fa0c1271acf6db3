// The flat invocation index of a 1-D grid folded into 2-D (src/kernels/grid.ts): a device allows
// maxComputeWorkgroupsPerDimension (65535) workgroups per dimension, so long grids wrap into y at
// whatever width grid.ts folded them; `per` is the workgroup size.
fn folded_index(gid: vec3<u32>, nwg: vec3<u32>, per: u32) -> u32 {
  return gid.x + gid.y * nwg.x * per;
}
