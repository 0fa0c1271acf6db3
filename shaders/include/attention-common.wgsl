// What both causal attention kernels share (shaders/attention-rows.wgsl: one invocation per row, the CPU
// family; shaders/attention-tiled.wgsl: workgroup-memory tiles, the GPU family): the uniforms, the
// row and statistic offsets, and the bindings of the three entry points, so the wrapper
// (src/kernels/attention.ts) binds either kernel with the same names. NV comes from the includer.
struct Params {
  T: u32,
  H: u32,
  scale: f32,
  nv: u32,      // = NV, as a runtime value: loops over it are not unrolled by the driver
}
@group(1) @binding(0) var<uniform> u: Params;

// Vector offset of head h of row t of sequence b, and the lse/D index of the same.
fn rowAt(b: u32, t: u32, h: u32) -> u32 { return ((b * u.T + t) * u.H + h) * NV; }
fn statAt(b: u32, t: u32, h: u32) -> u32 { return (b * u.H + h) * u.T + t; }

// forward
@group(0) @binding(0) var<storage, read> fq: array<{{VT}}>;
@group(0) @binding(1) var<storage, read> fk: array<{{VT}}>;
@group(0) @binding(2) var<storage, read> fv: array<{{VT}}>;
@group(0) @binding(3) var<storage, read_write> fo: array<{{VT}}>;
@group(0) @binding(4) var<storage, read_write> flse: array<f32>;

// backward_q: dq and D = rowsum(dO*O)
@group(0) @binding(0) var<storage, read> gq: array<{{VT}}>;
@group(0) @binding(1) var<storage, read> gk: array<{{VT}}>;
@group(0) @binding(2) var<storage, read> gv: array<{{VT}}>;
@group(0) @binding(3) var<storage, read> gout: array<{{VT}}>;
@group(0) @binding(4) var<storage, read> gdo: array<{{VDO}}>;
@group(0) @binding(5) var<storage, read> glse: array<f32>;
@group(0) @binding(6) var<storage, read_write> gdq: array<{{VT}}>;
@group(0) @binding(7) var<storage, read_write> gD: array<f32>;

// backward_kv: dk, dv
@group(0) @binding(0) var<storage, read> hq: array<{{VT}}>;
@group(0) @binding(1) var<storage, read> hk: array<{{VT}}>;
@group(0) @binding(2) var<storage, read> hv: array<{{VT}}>;
@group(0) @binding(3) var<storage, read> hdo: array<{{VDO}}>;
@group(0) @binding(4) var<storage, read> hlse: array<f32>;
@group(0) @binding(5) var<storage, read> hD: array<f32>;
@group(0) @binding(6) var<storage, read_write> hdk: array<{{VT}}>;
@group(0) @binding(7) var<storage, read_write> hdv: array<{{VT}}>;
