/** Float64 references of the elementwise ops (src/kernels/elementwise.ts): the activations, the binary ops and numpy-style broadcasting. */

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** numpy-style broadcast: the flat index in b (shape right-aligned to a) of a's flat index i. */
export function bIndex(i: number, aShape: readonly number[], bShape: readonly number[]): number {
  const pad = aShape.length - bShape.length;
  let rem = i;
  let idx = 0;
  let stride = 1;
  for (let k = aShape.length - 1; k >= 0; k--) {
    const c = rem % aShape[k]!;
    rem = Math.floor(rem / aShape[k]!);
    if (k >= pad) {
      const bd = bShape[k - pad]!;
      if (bd !== 1) idx += c * stride;
      stride *= bd;
    }
  }
  return idx;
}

/** The binary ops in float64. */
export const BINARY_REF: Record<'add' | 'sub' | 'mul' | 'div', (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
};
