/** Small robust statistics over the metrics stream. */

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median absolute deviation (unscaled). */
export function mad(xs: readonly number[], med = median(xs)): number {
  return median(xs.map((x) => Math.abs(x - med)));
}

/** A bounded FIFO of the last `cap` items. */
export class Ring<T> {
  private items: T[] = [];
  constructor(readonly cap: number) {}
  push(x: T): void {
    this.items.push(x);
    if (this.items.length > this.cap) this.items.splice(0, this.items.length - this.cap);
  }
  get length(): number {
    return this.items.length;
  }
  /** The last n items (all when n is larger), oldest first. */
  last(n = this.items.length): T[] {
    return this.items.slice(Math.max(0, this.items.length - n));
  }
  clear(): void {
    this.items = [];
  }
}

/** A number for text: 4 significant digits, NaN / Infinity spelled out. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return '—';
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e7) return String(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}

export const pct = (v: number): string => (Number.isFinite(v) ? `${Number((100 * v).toPrecision(3))}%` : String(v));

/** "1, 2, 3" / "1-20" style list of steps, at most `max` shown. */
export function stepList(steps: readonly number[], max = 8): string {
  if (!steps.length) return '—';
  const runs: string[] = [];
  let a = steps[0]!;
  let b = a;
  for (const s of steps.slice(1)) {
    if (s === b + 1) b = s;
    else {
      runs.push(a === b ? `${a}` : `${a}-${b}`);
      a = b = s;
    }
  }
  runs.push(a === b ? `${a}` : `${a}-${b}`);
  return runs.length > max ? `${runs.slice(0, max).join(', ')}, ... (${steps.length} steps)` : runs.join(', ');
}
