/**
 * Metrics as JSONL, one line per optimizer step (and one per validation). JSON has no NaN, and a
 * logger that turns NaN into 0 or null hides a dead run (docs/DESIGN.md §7.4): non-finite numbers are
 * written as the strings "NaN", "Infinity", "-Infinity".
 */
import { existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import { appendLine, rethrowIo, writeFileAtomic } from '../../util/atomic-write.ts';
import { faultAt } from './faults.ts';
import type { MetricsObserver, RunHeader } from '../../ui/observer.ts';
import { jsonSafe } from '../../util/json.ts';

export { jsonSafe };

export class MetricsLog {
  /** `observer` sees every record in memory as it is written (the live dashboard, train.js --ui). */
  constructor(
    readonly path: string,
    private readonly observer?: MetricsObserver,
  ) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /** Append one record; a line that does not fit (disk full) is cut off again and an IoError names the file. */
  write(record: Record<string, unknown>): void {
    appendLine(this.path, `${jsonSafe(record)}\n`, 'append to', faultAt(`metrics.jsonl:${String(record.kind)}-${String(record.step)}`));
    this.observer?.record(record);
  }

  /** Write `path` (header.json: read back by dashboard.js for a finished run) and tell the observer. */
  describe(path: string, header: RunHeader): void {
    writeFileAtomic(path, `${jsonSafe(header)}\n`, { action: 'write', beforeWrite: faultAt('header.json') });
    this.observer?.header(header);
  }

  /** The lines a resume from `step` keeps, and those it drops (steps after it, lines that do not parse). */
  private split(step: number): { text: string; keep: string[]; drop: string[] } {
    const text = existsSync(this.path) ? readFileSync(this.path, 'utf8') : '';
    const keep: string[] = [];
    const drop: string[] = [];
    for (const line of text.split('\n')) {
      let kept = false;
      if (line.trim()) {
        try {
          const r = JSON.parse(line) as { step?: number };
          kept = typeof r.step !== 'number' || r.step <= step;
        } catch {
          kept = false;
        }
      }
      if (kept) keep.push(line);
      else if (line.trim()) drop.push(line);
    }
    return { text, keep, drop };
  }

  /** The lines a resume from `step` drops, as JSONL text ('' when none). */
  linesAfter(step: number): string {
    const { drop } = this.split(step);
    return drop.length ? `${drop.join('\n')}\n` : '';
  }

  /**
   * On resume: drop lines of steps after `step`, so the log continues as one uninterrupted run.
   * Cutting the tail needs no disk space (a resume on a full disk must not lose the log); only a
   * log whose lines are out of order is rewritten, atomically. Returns the number of lines dropped.
   */
  truncateAfter(step: number): number {
    const { text, keep, drop } = this.split(step);
    const wanted = keep.length ? `${keep.join('\n')}\n` : '';
    if (wanted !== text) {
      if (text.startsWith(wanted)) {
        try {
          truncateSync(this.path, Buffer.byteLength(wanted));
        } catch (e) {
          rethrowIo(e, this.path, 'truncate');
        }
      } else writeFileAtomic(this.path, wanted, { action: 'rewrite', beforeWrite: faultAt('metrics.jsonl:truncate') });
    }
    // The kept lines parsed in split(): a resumed run's page starts with its whole history.
    this.observer?.history(keep.map((line) => JSON.parse(line) as Record<string, unknown>));
    return drop.length;
  }
}

/** Format a number for the console: NaN stays NaN. */
export function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toFixed(digits);
}
