// Deliberately invalid WGSL: used by test/runtime.test.ts to check that compile errors name the kernel.
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  x[gid.x] = undefined_symbol;
}
