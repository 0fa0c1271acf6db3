/**
 * The incremental diagnosis: `new Diagnoser(header)`, then `push(record)` for every metrics record
 * in order. push returns what changed (a finding seen for the first time, or whose severity,
 * status or title changed), so a console prints each finding once and again only when it changes.
 * `diagnoseRun(header, records)` does the same for a saved run.
 */
import { runContext, type RunContext } from './context.ts';
import { auxVsMain } from './detectors/aux.ts';
import { badStart } from './detectors/bad-start.ts';
import { clipLimited } from './detectors/clip.ts';
import { dataProblems } from './detectors/data.ts';
import type { Detector } from './detectors/detector.ts';
import { nonFinite } from './detectors/non-finite.ts';
import { routing } from './detectors/routing.ts';
import { stability } from './detectors/stability.ts';
import { toRecord } from './records.ts';
import { formatSummary } from './format.ts';
import type { DiagRecord, Finding, FindingChange, Note, RunHeaderInput } from './types.ts';

export const DETECTORS = [dataProblems, badStart, clipLimited, routing, auxVsMain, nonFinite, stability] as const;

const severityRank = { error: 0, warning: 1 } as const;

/** Errors first, then by the step they were first seen. */
export function sortFindings(fs: readonly Finding[]): Finding[] {
  return [...fs].sort((a, b) => severityRank[a.severity] - severityRank[b.severity] || a.firstStep - b.firstStep || a.id.localeCompare(b.id));
}

const signature = (f: Finding) => `${f.severity}|${f.status}|${f.title}`;

export interface DiagnosisState {
  /** Train records seen, and the last step. */
  trainSteps: number;
  validRecords: number;
  /** Records push() could not read (left out; the diagnosis must never stop a run), and the last reason. */
  rejected: number;
  lastRejection: string | null;
  firstStep: number | null;
  lastStep: number | null;
}

export class Diagnoser {
  readonly ctx: RunContext;
  private readonly detectors: Detector[];
  private current = new Map<string, Finding>();
  private reported = new Map<string, string>();
  private readonly state: DiagnosisState = { trainSteps: 0, validRecords: 0, rejected: 0, lastRejection: null, firstStep: null, lastStep: null };

  constructor(header: RunHeaderInput) {
    this.ctx = runContext(header);
    this.detectors = DETECTORS.map((make) => make(this.ctx));
    this.refresh();
  }

  /**
   * One metrics record (as written to metrics.jsonl, or the run's in-memory record with real NaN).
   * Never throws: records of other kinds are ignored, and a malformed one is left out and counted
   * (progress().rejected), so the diagnosis cannot stop a training run.
   */
  push(record: DiagRecord | Record<string, unknown>): FindingChange[] {
    const r = toRecord(record);
    if (r === null) return this.changes();
    if ('error' in r) {
      this.state.rejected++;
      this.state.lastRejection = r.error;
      return this.changes();
    }
    if (r.kind === 'train') {
      this.state.trainSteps++;
      this.state.firstStep ??= r.step;
      this.state.lastStep = r.step;
    } else this.state.validRecords++;
    for (const d of this.detectors) d.observe(r);
    this.refresh();
    return this.changes();
  }

  /** Changes not reported yet (push returns them; before the first push: the data findings). */
  changes(): FindingChange[] {
    const out: FindingChange[] = [];
    for (const f of sortFindings([...this.current.values()])) {
      const sig = signature(f);
      const was = this.reported.get(f.id);
      if (was === sig) continue;
      if (was === undefined) out.push({ change: 'new', finding: f });
      else {
        const [severity, status, ...title] = was.split('|');
        out.push({
          change: f.status === 'resolved' && status !== 'resolved' ? 'resolved' : 'changed',
          finding: f,
          previous: { severity: severity as Finding['severity'], status: status as Finding['status'], title: title.join('|') },
        });
      }
      this.reported.set(f.id, sig);
    }
    return out;
  }

  findings(): Finding[] {
    return sortFindings([...this.current.values()]);
  }

  notes(): Note[] {
    return this.detectors.flatMap((d) => d.notes?.() ?? []).sort((a, b) => a.step - b.step);
  }

  progress(): Readonly<DiagnosisState> {
    return this.state;
  }

  /** End-of-run text: one line per finding (or "no findings"), notes, and what could not be judged. */
  summary(): string {
    return formatSummary(this.findings(), this.notes(), this.state, this.unjudged());
  }

  /** What this run's header lacks for some detector (said in the summary, so silence is not mistaken for health). */
  unjudged(): string[] {
    const out: string[] = [];
    if (!this.ctx.baseline) out.push('the start (header.json has no baseline)');
    if (!this.ctx.data) out.push('the data (header.json has no data statistics)');
    return out;
  }

  private refresh(): void {
    const next = new Map<string, Finding>();
    for (const d of this.detectors) for (const f of d.findings()) next.set(f.id, f);
    this.current = next;
  }
}

export interface Diagnosis {
  findings: Finding[];
  notes: Note[];
  state: DiagnosisState;
  unjudged: string[];
  summary: string;
}

/** Diagnose a saved run: header.json's object and its records (parsed or raw) in file order. */
export function diagnoseRun(header: RunHeaderInput, records: Iterable<DiagRecord | Record<string, unknown>>): Diagnosis {
  const d = new Diagnoser(header);
  for (const r of records) d.push(r);
  return { findings: d.findings(), notes: d.notes(), state: { ...d.progress() }, unjudged: d.unjudged(), summary: d.summary() };
}
