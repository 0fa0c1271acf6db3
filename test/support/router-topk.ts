/**
 * Test oracle and benchmark baseline: the plain top-k router, one dispatch of shaders/router.wgsl's
 * `forward` entry (the same route() the engine's forward_counts runs). The engine routes with
 * routerTopKCounts (src/kernels/router.ts), which also counts each chunk's pairs for the dispatch
 * plan; tests compare its probs, idx and weights with these bit for bit.
 */
import type { Tensor } from '../../src/kernels/tensor.ts';
import { CHUNK_WG, forwardDims, routerOutputs, type RouterOptions, type RouterOutput } from '../../src/kernels/router.ts';
import { foldedGrid } from '../../src/kernels/grid.ts';

export function routerTopK(logits: Tensor, opts: RouterOptions = {}): RouterOutput {
  const rt = logits.rt;
  const [n, e, k] = forwardDims(logits, opts);
  const { probs, idx, weights } = routerOutputs(rt, n, e, k);
  const kern = rt.kernel({ shader: 'router', entry: 'forward', params: { EXTRA: '0.0' }, constants: { RENORM: opts.renormalize ? 1 : 0, CHUNK_WG } });
  rt.dispatch(kern, { logits, probs, idx, weights }, foldedGrid(rt, n, 64), { n, e, k, chunk: 0 });
  return { probs, idx, weights };
}
