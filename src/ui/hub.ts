/**
 * The dashboard's state: an append-only log of events (src/ui/protocol.ts), each serialized once
 * when published. A page gets the log so far (snapshot) and then every later event (subscribe),
 * so publishing a step costs one JSON.stringify and a write per open page — no disk access.
 */
import { parseRecord } from '../report/metrics-reader.ts';
import { jsonSafe } from '../util/json.ts';
import type { RunStatus, UiEvent, UiHeader } from './protocol.ts';

export type Listener = (seq: number, line: string) => void;

export class Hub {
  private readonly lines: string[] = [];
  private readonly listeners = new Set<Listener>();
  private runs = 0;

  /** Events published so far; event n (1-based) is lines[n - 1]. */
  get seq(): number {
    return this.lines.length;
  }

  publish(event: UiEvent): void {
    const line = jsonSafe(event);
    this.lines.push(line);
    const seq = this.lines.length;
    for (const l of this.listeners) l(seq, line);
  }

  /** `live`: this process is the run (train.js --ui); `followed`: its files are tailed (dashboard.js). */
  addRun(label: string, dir: string, live: boolean, followed = false): number {
    const run = this.runs++;
    this.publish({ type: 'run', run, label, dir, live, ...(followed ? { followed } : {}) });
    return run;
  }

  header(run: number, header: UiHeader): void {
    this.publish({ type: 'header', run, header });
  }

  status(run: number, status: RunStatus, message?: string): void {
    this.publish({ type: 'status', run, status, ...(message !== undefined ? { message } : {}) });
  }

  reset(run: number): void {
    this.publish({ type: 'reset', run });
  }

  /**
   * A record as the logger writes it (numbers, or their non-finite spellings from a file): checked
   * against the metrics reader's schema, so the page gets the same shape live and from disk.
   * Returns the problem instead of publishing a record that does not parse.
   */
  record(run: number, raw: unknown): string | null {
    // Through the logger's own JSON first: a live record holds NaN as a number, a file the string "NaN".
    const r = parseRecord(JSON.parse(jsonSafe(raw)));
    if (r === null) return null; // a kind the dashboard does not draw
    if ('error' in r) return r.error;
    this.publish({ type: 'record', run, record: r });
    return null;
  }

  /** Event lines after `since` (a seq the page already has), oldest first. */
  since(since: number): string[] {
    return this.lines.slice(Math.min(Math.max(0, since), this.lines.length));
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
