// Matmul through subgroup matrices (tensor cores on Vulkan via VK_KHR_cooperative_matrix):
// C [M, N] f32 = A [M, K] f16 · B [K, N] f16, row-major, M, N, K multiples of the tile. One
// subgroup (one workgroup) per TM x TN tile of C, loading its operands straight from storage.
// Experimental (Dawn's chromium-experimental-subgroup-matrix): off in the engine until it has
// passed its float64 check on a GPU (bench/gpu/check.ts runs it; bench/gpu/matmul-sgmatrix.ts).
enable f16;
enable chromium_experimental_subgroup_matrix;

struct Params { M: u32, N: u32, K: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(1) @binding(0) var<uniform> u: Params;

@compute @workgroup_size({{SG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.y * {{TM}}u;
  let col = wid.x * {{TN}}u;
  // left <T, columns = K, rows = M>, right <T, N, K>, result <T, N, M>
  var acc = subgroup_matrix_result<f32, {{TN}}, {{TM}}>();
  for (var k = 0u; k < u.K; k += {{TK}}u) {
    let l = subgroupMatrixLoad<subgroup_matrix_left<f16, {{TK}}, {{TM}}>>(&A, row * u.K + k, false, u.K);
    let r = subgroupMatrixLoad<subgroup_matrix_right<f16, {{TN}}, {{TK}}>>(&B, k * u.N + col, false, u.N);
    acc = subgroupMatrixMultiplyAccumulate(l, r, acc);
  }
  subgroupMatrixStore(&C, row * u.N + col, acc, false, u.N);
}
