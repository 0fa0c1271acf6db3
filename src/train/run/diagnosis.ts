/**
 * The run's own diagnosis (docs/FINDINGS.md): the detectors of src/diagnose watch the metrics
 * stream as it is written. A finding is printed once, when first detected, and again only when it
 * changes (severity, status or title); findings.json in the run folder always holds the current
 * list (what `node diagnose.js RUN` would say); the end of the run prints a summary.
 *
 * It is a MetricsObserver beside the dashboard's, so it sees exactly the records metrics.jsonl
 * gets, in order, including a resumed run's kept history.
 */
import { Diagnoser, formatChanges, jsonText, toJson, type FindingChange, type RunHeaderInput } from '../../diagnose/index.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import type { MetricsObserver, RunHeader } from '../../ui/observer.ts';
import { faultAt } from './faults.ts';

export class RunDiagnosis implements MetricsObserver {
  private diag: Diagnoser | null = null;
  private history_: Record<string, unknown>[] = [];
  /** Where lines go: stderr before and after the loop, above the progress bar during it. */
  log: (line: string) => void = (l) => console.error(l);

  constructor(
    private readonly file: string,
    private readonly runLabel: string,
  ) {}

  history(records: Record<string, unknown>[]): void {
    // A resume: the kept records are replayed once the header is known (header() comes after).
    this.history_ = records;
  }

  header(header: RunHeader): void {
    this.diag = new Diagnoser(header as RunHeaderInput);
    const before = this.history_.flatMap((r) => this.diag!.push(r));
    this.history_ = [];
    // Findings about the data (and those of the resumed steps) are known before the first step.
    this.report([...before, ...this.diag.changes()], before.length ? ' (steps before the resume)' : '');
  }

  record(record: Record<string, unknown>): void {
    if (this.diag) this.report(this.diag.push(record));
  }

  /** The end of the run: one line per finding (or "no findings"), printed once. */
  summary(): string | null {
    if (!this.diag) return null;
    return this.diag.summary();
  }

  private report(changes: readonly FindingChange[], suffix = ''): void {
    if (!changes.length || !this.diag) return;
    for (const block of formatChanges(changes, { tag: `[diagnose]${suffix}` })) this.log(block);
    this.save();
  }

  private save(): void {
    const d = this.diag!;
    const diagnosis = { findings: d.findings(), notes: d.notes(), state: d.progress(), unjudged: d.unjudged() };
    writeFileAtomic(this.file, `${jsonText(toJson(this.runLabel, diagnosis))}\n`, { action: 'writing', beforeWrite: faultAt('findings.json') });
  }
}

/** One observer that forwards to several (the dashboard's and the diagnosis). */
export function observers(...list: (MetricsObserver | undefined)[]): MetricsObserver {
  const all = list.filter((o): o is MetricsObserver => o !== undefined);
  return {
    history: (r) => all.forEach((o) => o.history(r)),
    header: (h) => all.forEach((o) => o.header(h)),
    record: (r) => all.forEach((o) => o.record(r)),
  };
}
