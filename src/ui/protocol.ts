/**
 * What the dashboard server sends the page: one event log, as JSON lines. GET /api/snapshot
 * returns every event so far (then a `seq` line), GET /api/events?since=N streams the later ones
 * as server-sent events; the page applies both with the same reducer (src/ui/page/store.ts), so
 * a page opened late holds the whole history. Shared by the server and the page: no Node imports.
 */
import type { MetricsRecord } from '../report/metrics-reader.ts';

/**
 * 'stopped': --stop-after, or (dashboard.js) a run no process holds any more that did not reach
 * schedule.steps; 'failed': an error or a stop rule (the message says which); 'interrupted': a
 * signal; 'saved': a run folder whose state cannot be told (no lock and no schedule.steps).
 */
export type RunStatus = 'running' | 'done' | 'stopped' | 'diverged' | 'failed' | 'interrupted' | 'saved';

/** header.json as the page gets it; every field optional, since older runs have no header.json. */
export interface UiHeader {
  config?: Record<string, unknown>;
  parameters?: number;
  plan?: string;
  adapter?: { vendor: string; architecture: string; device: string; description: string; backend: string };
  startStep?: number;
  startedAt?: string;
  /** The no-information loss the diagnosis judges the start by (src/diagnose, header.json `baseline`). */
  baseline?: unknown;
  /** Data statistics for the diagnosis (header.json `data`). */
  data?: unknown;
}

export type UiEvent =
  /**
   * live: the training process itself serves the page (train.js --ui); followed: dashboard.js
   * tails the run's files, so more records and status changes may come at any time.
   */
  | { type: 'run'; run: number; label: string; dir: string; live: boolean; followed?: boolean }
  | { type: 'header'; run: number; header: UiHeader }
  /** The run's records so far are replaced by the ones that follow (a resumed run's kept history). */
  | { type: 'reset'; run: number }
  | { type: 'record'; run: number; record: MetricsRecord }
  | { type: 'status'; run: number; status: RunStatus; message?: string }
  /** Last line of a snapshot: subscribe to /api/events?since=seq. */
  | { type: 'seq'; seq: number };

const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/** Undo the logger's spelling of non-finite numbers (src/util/json.ts jsonSafe) inside a record. */
function revive(v: unknown): unknown {
  if (typeof v === 'string') return v in NON_FINITE ? NON_FINITE[v] : v;
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  return v;
}

/**
 * One event line from our own server (its records were validated there, src/ui/hub.ts). Only
 * record payloads are revived: a run label or a config string that reads "NaN" stays a string.
 */
export function parseEventLine(line: string): UiEvent {
  const ev = JSON.parse(line) as UiEvent;
  if (ev.type === 'record') return { ...ev, record: revive(ev.record) as MetricsRecord };
  return ev;
}
