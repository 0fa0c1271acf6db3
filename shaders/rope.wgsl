// Rotary position embedding, HF "rotate_half" convention (LLaMA / Time-MoE), on x [B, T, H, hd]
// contiguous (= [B*T, H*hd], a Linear's output). For pair i < hd/2 of each head vector at position t:
//   y[i]        = x[i] * cos - x[i+hd/2] * sin
//   y[i+hd/2]   = x[i+hd/2] * cos + x[i] * sin
// with (cos, sin) of angle(t, i) read from a host-built table cs [Tmax, hd/2] (float64 trig, so
// large angles lose nothing to the device's sin/cos). sign = -1 rotates by -angle: the backward.
// One invocation per pair; the grid is folded into 2-D.
// Storage type {{T}} (f32 or f16) for x and y; the table and all math are f32.
{{ENABLES}}

// #include "grid"

struct Params {
  pairs: u32,   // B*T*H*hd/2
  T: u32,
  H: u32,
  half: u32,    // hd/2
  sign: f32,
  _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<{{T}}>;
@group(1) @binding(0) var<uniform> u: Params;

const WG: u32 = {{WG}}u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = folded_index(gid, nwg, WG);
  if (p >= u.pairs) { return; }
  let i = p % u.half;
  let hv = p / u.half;          // (b*T + t)*H + h
  let t = (hv / u.H) % u.T;
  let c = cs[t * u.half + i];
  let sn = c.y * u.sign;
  let a = hv * 2u * u.half + i;
  let x1 = f32(x[a]);
  let x2 = f32(x[a + u.half]);
  y[a] = {{T}}(x1 * c.x - x2 * sn);
  y[a + u.half] = {{T}}(x2 * c.x + x1 * sn);
}
