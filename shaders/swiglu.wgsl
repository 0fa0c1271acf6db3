// Fused SwiGLU: h = silu(g) * u, and its backward dg = dh*u*silu'(g), du = dh*silu(g) in one pass.
// Two layouts: separate g, u [R, H]; or one [R, 2H] tensor gu with gate in columns [0, H) and
// up in [H, 2H) (one matmul with concatenated weights), whose backward writes one [R, 2H] gradient.
// Storage type {{T}} (f32 or f16); the math is always f32.
{{ENABLES}}

// #include "grid"

override WG: u32; // swiglu.ts WG

struct Params { n: u32, h: u32, _p0: u32, _p1: u32 } // n = R*H elements of h; h = H
@group(1) @binding(0) var<uniform> p: Params;

// Flattened index of a 2-D-folded grid (at most maxComputeWorkgroupsPerDimension per dimension: grid.ts).

// sigmoid without overflow: exp only sees -|x|, so s(-100) = 0 and s(100) = 1 exactly, never NaN.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= 0.0);
}

// (silu(g), silu'(g)) with silu'(g) = s(g) * (1 + g * (1 - s(g))).
fn silu_and_grad(g: f32) -> vec2<f32> {
  let s = sigmoid(g);
  return vec2<f32>(g * s, s * (1.0 + g * (1.0 - s)));
}

// Index of gate and up in the [R, 2H] layout for element i of the [R, H] output.
fn gate_index(i: u32) -> u32 {
  let r = i / p.h;
  return i + r * p.h; // r*2H + c
}

// ---------------------------------------------------------------- separate g, u
@group(0) @binding(0) var<storage, read> f_g: array<{{T}}>;
@group(0) @binding(1) var<storage, read> f_u: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> f_h: array<{{T}}>;

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= p.n) { return; }
  let g = f32(f_g[i]);
  f_h[i] = {{T}}(g * sigmoid(g) * f32(f_u[i]));
}

@group(0) @binding(0) var<storage, read> b_g: array<{{T}}>;
@group(0) @binding(1) var<storage, read> b_u: array<{{T}}>;
@group(0) @binding(2) var<storage, read> b_dh: array<{{T}}>;
@group(0) @binding(3) var<storage, read_write> b_dg: array<{{T}}>;
@group(0) @binding(4) var<storage, read_write> b_du: array<{{T}}>;

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= p.n) { return; }
  let sg = silu_and_grad(f32(b_g[i]));
  let dh = f32(b_dh[i]);
  b_dg[i] = {{T}}(dh * f32(b_u[i]) * sg.y);
  b_du[i] = {{T}}(dh * sg.x);
}

// ---------------------------------------------------------------- one [R, 2H] tensor
@group(0) @binding(0) var<storage, read> ff_gu: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> ff_h: array<{{T}}>;

@compute @workgroup_size(WG)
fn forward_fused(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= p.n) { return; }
  let k = gate_index(i);
  let g = f32(ff_gu[k]);
  ff_h[i] = {{T}}(g * sigmoid(g) * f32(ff_gu[k + p.h]));
}

@group(0) @binding(0) var<storage, read> bf_gu: array<{{T}}>;
@group(0) @binding(1) var<storage, read> bf_dh: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> bf_dgu: array<{{T}}>;

@compute @workgroup_size(WG)
fn backward_fused(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, WG);
  if (i >= p.n) { return; }
  let k = gate_index(i);
  let sg = silu_and_grad(f32(bf_gu[k]));
  let dh = f32(bf_dh[i]);
  bf_dgu[k] = {{T}}(dh * f32(bf_gu[k + p.h]) * sg.y);
  bf_dgu[k + p.h] = {{T}}(dh * sg.x);
}
