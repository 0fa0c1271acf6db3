/**
 * Metrics as JSONL, one line per optimizer step (and one per validation). JSON has no NaN, and a
 * logger that turns NaN into 0 or null hides a dead run (docs/DESIGN.md §7.4): non-finite numbers are
 * written as the strings "NaN", "Infinity", "-Infinity".
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function jsonSafe(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

export class MetricsLog {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, `${jsonSafe(record)}\n`);
  }

  /** On resume: drop lines of steps after `step`, so the log continues as one uninterrupted run. */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const keep = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (!line.trim()) return false;
        try {
          const r = JSON.parse(line) as { step?: number };
          return typeof r.step !== 'number' || r.step <= step;
        } catch {
          return false;
        }
      });
    writeFileSync(this.path, keep.length ? `${keep.join('\n')}\n` : '');
  }
}

/** Format a number for the console: NaN stays NaN. */
export function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toFixed(digits);
}
