/** A metrics.jsonl train line as the logger writes it, with plain values (nothing clipped or skipped); tests set what they look at. */
export function trainRecord(step: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'train',
    step,
    loss: 1,
    lossMain: 1,
    aux: 2,
    z: 0,
    lr: 1e-3,
    auxFactor: 0.02,
    gradNorm: 1,
    gradNormPostClip: 1,
    clipCoef: 1,
    clippedFraction: 0,
    skipped: false,
    nonFinite: [],
    routing: [],
    ...over,
  };
}
