/** Mean pooling over the sequence axis (the classification head) and its backward. */
import type { Tensor } from './tensor.ts';
import { sumAxis } from './reduce.ts';
import { foldedGrid } from './grid.ts';

/** x viewed as [outer, n, inner] -> mean over n, shape [outer, inner]. */
export function meanPool(x: Tensor, outer: number, n: number, inner: number): Tensor {
  return sumAxis(x, { outer, n, inner }, { scale: 1 / n, outShape: [outer, inner] });
}

/** dx [outer*n, inner] = dy[o] / n broadcast over the pooled axis. */
export function meanPoolBackward(dy: Tensor, outer: number, n: number, inner: number): Tensor {
  if (dy.size !== outer * inner) throw new Error(`meanPoolBackward: ${dy} is not [${outer}, ${inner}]`);
  const rt = dy.rt;
  const dx = rt.empty([outer * n, inner], 'f32', 'meanpool.dx');
  rt.dispatch(rt.kernel({ shader: 'mean-pool', entry: 'expand' }), { dy, dx }, foldedGrid(rt, outer * n * inner, 256), { outer, n, inner, scale: 1 / n });
  return dx;
}
