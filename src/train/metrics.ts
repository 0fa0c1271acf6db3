/**
 * Metrics as JSONL, one line per optimizer step (and one per validation). JSON has no NaN, and a
 * logger that turns NaN into 0 or null hides a dead run (DESIGN §7.4): non-finite numbers are
 * written as the strings "NaN", "Infinity", "-Infinity".
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AdapterSummary } from '../kernels/device.ts';

export function jsonSafe(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** What a run says about itself once, before its first step: written to header.json beside the metrics. */
export interface RunHeader {
  config: unknown;
  parameters: number;
  /** plan.txt's text. */
  plan: string;
  adapter?: AdapterSummary;
  /** The optimizer step the run starts after (0 for a fresh run). */
  startStep: number;
  startedAt: string;
}

/**
 * Sees what the log sees, in memory (the live dashboard, src/ui/live.ts): `history` once with the
 * records kept from an earlier run segment (resume), then the header, then every record as written.
 */
export interface MetricsObserver {
  history(records: Record<string, unknown>[]): void;
  header(header: RunHeader): void;
  record(record: Record<string, unknown>): void;
}

export class MetricsLog {
  constructor(
    readonly path: string,
    private readonly observer?: MetricsObserver,
  ) {
    mkdirSync(dirname(path), { recursive: true });
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, `${jsonSafe(record)}\n`);
    this.observer?.record(record);
  }

  /** Write <dir>/header.json (read back by the dashboard for finished runs) and tell the observer. */
  describe(header: RunHeader): void {
    writeFileSync(join(dirname(this.path), 'header.json'), `${jsonSafe(header)}\n`);
    this.observer?.header(header);
  }

  /** On resume: drop lines of steps after `step`, so the log continues as one uninterrupted run. */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) {
      this.observer?.history([]);
      return;
    }
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
    this.observer?.history(keep.map((line) => JSON.parse(line) as Record<string, unknown>));
  }
}

/** Format a number for the console: NaN stays NaN. */
export function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toFixed(digits);
}
