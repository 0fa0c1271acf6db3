// The dispatch plan's shared declarations (shaders/dispatch.wgsl, shaders/dispatch-indices.wgsl).
const DROPPED: u32 = 0xffffffffu;

struct PlanParams { n: u32, e: u32, k: u32, cap: u32, chunks: u32, chunk: u32, _p1: u32, _p2: u32 }
@group(1) @binding(0) var<uniform> pu: PlanParams;
