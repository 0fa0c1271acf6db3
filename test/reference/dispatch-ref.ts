/** Float64 references of token dispatch: plan, gather and combine (src/kernels/dispatch.ts). */

export const DROPPED = 0xffffffff;
export interface DispatchRef {
  counts: number[];
  offsets: number[];
  pos: number[];
  src: number[];
  rowPair: number[];
  dropped: number;
}

/** Expert-contiguous order, (token, slot) order inside an expert; pairs past `capacity` dropped. */
export function dispatchRef(idx: number[], N: number, E: number, k: number, capacity = Infinity): DispatchRef {
  const lists: number[][] = Array.from({ length: E }, () => []);
  for (let p = 0; p < N * k; p++) lists[idx[p]!]!.push(p);
  const counts = lists.map((l) => Math.min(l.length, capacity));
  const offsets = [0];
  for (let e = 0; e < E; e++) offsets.push(offsets[e]! + counts[e]!);
  const pos = new Array<number>(N * k).fill(DROPPED);
  const src = new Array<number>(N * k).fill(DROPPED);
  const rowPair = new Array<number>(N * k).fill(DROPPED);
  let dropped = 0;
  for (let e = 0; e < E; e++) {
    lists[e]!.forEach((p, r) => {
      if (r >= capacity) {
        dropped++;
        return;
      }
      const row = offsets[e]! + r;
      pos[p] = row;
      src[row] = Math.floor(p / k);
      rowPair[row] = p;
    });
  }
  return { counts, offsets, pos, src, rowPair, dropped };
}

/** xs[r] = x[src[r]] for kept rows, 0 past the last kept row. */
export function gatherRef(x: ArrayLike<number>, plan: DispatchRef, d: number): Float64Array {
  const R = plan.src.length;
  const out = new Float64Array(R * d);
  for (let r = 0; r < plan.offsets[plan.offsets.length - 1]!; r++) for (let c = 0; c < d; c++) out[r * d + c] = x[plan.src[r]! * d + c]!;
  return out;
}

/** dx[t] = Σ_j d_xs[pos[t, j]] over kept pairs. */
export function gatherBackwardRef(dxs: ArrayLike<number>, plan: DispatchRef, N: number, k: number, d: number): Float64Array {
  const dx = new Float64Array(N * d);
  for (let p = 0; p < N * k; p++) {
    const r = plan.pos[p]!;
    if (r === DROPPED) continue;
    const t = Math.floor(p / k);
    for (let c = 0; c < d; c++) dx[t * d + c]! += dxs[r * d + c]!;
  }
  return dx;
}

/** y[t] = Σ_j w[t, j] ys[pos[t, j]] over kept pairs. */
export function combineRef(ys: ArrayLike<number>, w: ArrayLike<number>, plan: DispatchRef, N: number, k: number, d: number): Float64Array {
  const y = new Float64Array(N * d);
  for (let p = 0; p < N * k; p++) {
    const r = plan.pos[p]!;
    if (r === DROPPED) continue;
    const t = Math.floor(p / k);
    for (let c = 0; c < d; c++) y[t * d + c]! += w[p]! * ys[r * d + c]!;
  }
  return y;
}

export function combineBackwardRef(
  dy: ArrayLike<number>,
  ys: ArrayLike<number>,
  w: ArrayLike<number>,
  plan: DispatchRef,
  N: number,
  k: number,
  d: number,
): { dys: Float64Array; dw: Float64Array } {
  const dys = new Float64Array(N * k * d);
  const dw = new Float64Array(N * k);
  for (let p = 0; p < N * k; p++) {
    const r = plan.pos[p]!;
    if (r === DROPPED) continue;
    const t = Math.floor(p / k);
    let s = 0;
    for (let c = 0; c < d; c++) {
      dys[r * d + c] = w[p]! * dy[t * d + c]!;
      s += dy[t * d + c]! * ys[r * d + c]!;
    }
    dw[p] = s;
  }
  return { dys, dw };
}
