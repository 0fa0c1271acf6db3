/**
 * JSON with non-finite numbers spelled out: JSON has no NaN, and a logger that turns NaN into 0
 * or null hides a dead run (docs/DESIGN.md §7.4), so NaN, Infinity and -Infinity are written as
 * those strings. Used by the metrics log (src/train/run/metrics.ts) and the dashboard (src/ui/hub.ts).
 */
export function jsonSafe(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}
