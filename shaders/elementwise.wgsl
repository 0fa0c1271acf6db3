// Elementwise family: out[i] = op(x, i) with x = a[i], computed in f32 whatever the storage types.
// One shader for every unary, binary (broadcast), in-place axpy, backward-helper and cast op:
// the op body is a template slot (see src/kernels/elementwise.ts for the table of ops).
//   slot ENABLE  "enable f16;" when any buffer is f16, else empty
//   slot TO slot TA slot TB  storage element types of out, a, b
//   slot OP  body of fn op(x: f32, i: u32) -> f32; it may call load_b(i) (broadcast operand)
//           or load_out(i) (current value of out, for in-place accumulation). A helper that is
//           never called leaves its buffer out of the pipeline layout, so unary ops bind [out, a].
// Broadcasting: a is viewed as [o, m, n] and b as [o, n] (b broadcast along the middle run of
// dims): b index = (i / (m*n)) * n + i % n. Same-shape b is m = 1; [N,d] op [d] is o = 1.
// slot BIDX is that index expression, simplified by the host for those common cases: integer
// division has no SIMD instruction on CPUs, so lavapipe pays dearly for it per element.
{{ENABLE}}
// #include "grid"

struct Params {
  count: u32,   // elements of out
  mn: u32,      // m * n of the broadcast view
  n: u32,       // trailing matched run
  _p0: u32,
  alpha: f32,
  beta: f32,
  _p1: f32,
  _p2: f32,
}
@group(0) @binding(0) var<storage, read_write> out: array<{{TO}}>;
@group(0) @binding(1) var<storage, read> a: array<{{TA}}>;
@group(0) @binding(2) var<storage, read> b: array<{{TB}}>;
@group(1) @binding(0) var<uniform> u: Params;

fn load_b(i: u32) -> f32 {
  return f32(b[{{BIDX}}]);
}

fn load_out(i: u32) -> f32 {
  return f32(out[i]);
}

fn sigmoid(x: f32) -> f32 {
  // exp(-x) overflows to +inf for x < -88: 1/(1+inf) = 0, the right limit.
  return 1.0 / (1.0 + exp(-x));
}

fn op(x: f32, i: u32) -> f32 {
  {{OP}}
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = folded_index(gid, nwg, 256u);
  if (i >= u.count) { return; }
  out[i] = {{TO}}(op(f32(a[i]), i));
}
