// Shared by the matmul kernels (matmul-blocked.wgsl, matmul-tiled.wgsl): the uniform block and the
// fused activation of the epilogue (src/kernels/matmul-common.ts fills {{ACT}}).
struct Params {
  M: u32, N: u32, K: u32, E: u32,
  aBatch: u32, bBatch: u32, cBatch: u32, alpha: f32,
  // element offsets added to A/B/C (a batch slice addressed by a single dispatch)
  aBase: u32, bBase: u32, cBase: u32, _pad: u32,
}

// The fused activation of the epilogue (identity, relu, silu or tanh-GELU).
fn act(v: f32) -> f32 {
  return {{ACT}};
}
