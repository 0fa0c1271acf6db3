// Matmul family, GPU kernel: C = epilogue(op(A) · op(B)) through workgroup-memory tiles
// (src/kernels/matmul-tiled.ts generates the unrolled parts; matmul-blocked.wgsl is the CPU-adapter kernel).
// Bindings (group 0, in this order): A, B, C, then the optional bias, residual, offsets.
// A, B, C and the residual are each f32 or f16; tiles, products and accumulation are f32.

{{ENABLE}}

// #include "matmul-common"

{{BINDINGS}}
@group(1) @binding(0) var<uniform> u: Params;

// The A tile as [BK][BM (+1 padding when K is A's contiguous axis)], the B tile as [BK][BN (+1)].
var<workgroup> As: array<f32, {{A_WORDS}}>;
var<workgroup> Bs: array<f32, {{B_WORDS}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
{{SETUP}}
{{DECL}}
  var k0 = kBegin;
  loop {
    if (k0 >= kEnd) { break; }
{{BODY}}
    k0 += {{BK}}u;
  }
{{EPILOGUE}}
}
