/**
 * The console and JSON forms of the diagnosis. A finding prints as one compact block:
 *
 *   [diagnose] ERROR  Initial loss far above ln C: an overconfident classification head  (step 0, ongoing)
 *     - step 0: validation cross-entropy before training: 16.15, 2.866x the baseline 5.635 (ln 280 ...)
 *     cause: the classification head is initialised with std 1 ...
 *     fix: --set model.init.headStd=0.02  (head std 0.02 starts the loss at the baseline)
 *     reproduce: npm run experiment -- head-init
 */
import type { Finding, FindingChange, Note } from './types.ts';

export interface FormatOptions {
  /** Line prefix of the block's first line (default "[diagnose]"). */
  tag?: string;
  /** At most this many evidence lines (default all). */
  maxEvidence?: number;
}

function when(f: Finding): string {
  const span = f.firstStep === f.lastStep ? `step ${f.firstStep}` : `steps ${f.firstStep}-${f.lastStep}`;
  return `${f.firstStep === 0 && f.lastStep === 0 ? 'before training' : span}, ${f.status}`;
}

export function formatFinding(f: Finding, opts: FormatOptions = {}, change?: FindingChange): string {
  const tag = opts.tag ?? '[diagnose]';
  const head = change?.change === 'resolved' ? 'RESOLVED' : f.severity.toUpperCase();
  const was = change?.change === 'changed' && change.previous && change.previous.severity !== f.severity ? ` (was ${change.previous.severity})` : '';
  const ev = opts.maxEvidence !== undefined ? f.evidence.slice(0, opts.maxEvidence) : f.evidence;
  const lines = [
    `${tag} ${head}${was}  ${f.title}  (${when(f)})`,
    ...ev.map((e) => `  - ${e.text}`),
    `  cause: ${f.cause}`,
    `  fix: ${f.fix.sets.length ? `${f.fix.sets.map((s) => `--set ${s}`).join(' ')}  (${f.fix.note})` : f.fix.note}`,
    ...(f.experiment ? [`  reproduce: npm run experiment -- ${f.experiment}`] : []),
  ];
  return lines.join('\n');
}

/** The blocks for what push() returned (a resolved finding gets one short line). */
export function formatChanges(changes: readonly FindingChange[], opts: FormatOptions = {}): string[] {
  return changes.map((c) =>
    c.change === 'resolved'
      ? `${opts.tag ?? '[diagnose]'} resolved: ${c.finding.title} (last seen at step ${c.finding.lastStep})`
      : formatFinding(c.finding, opts, c),
  );
}

export function formatSummary(
  findings: readonly Finding[],
  notes: readonly Note[],
  state: { trainSteps: number; validRecords: number; firstStep: number | null; lastStep: number | null },
  unjudged: readonly string[] = [],
): string {
  const span = state.firstStep !== null ? `steps ${state.firstStep}-${state.lastStep}` : 'no train steps';
  const errors = findings.filter((f) => f.severity === 'error').length;
  const lines = [
    findings.length
      ? `diagnosis: ${findings.length} finding${findings.length === 1 ? '' : 's'} (${errors} error${errors === 1 ? '' : 's'}, ${findings.length - errors} warning${findings.length - errors === 1 ? '' : 's'}) over ${span}`
      : `diagnosis: no findings over ${span} (${state.validRecords} validation${state.validRecords === 1 ? '' : 's'})`,
    ...findings.map(
      (f) => `  ${f.severity === 'error' ? 'ERROR  ' : 'warning'} ${f.title} (${when(f)})${f.fix.sets.length ? `: --set ${f.fix.sets.join(' --set ')}` : ''}`,
    ),
    ...notes.map((n) => `  note: ${n.text}`),
    ...(unjudged.length ? [`  not judged: ${unjudged.join('; ')}`] : []),
  ];
  return lines.join('\n');
}

export interface DiagnosisJson {
  run: string;
  findings: Finding[];
  notes: Note[];
  steps: { first: number | null; last: number | null; train: number; valid: number; rejected?: number };
  unjudged: string[];
  partialLastLine?: boolean;
}

/** The JSON form (stable keys; numbers as numbers, non-finite ones as strings like the metrics log). */
export function toJson(
  run: string,
  d: {
    findings: Finding[];
    notes: Note[];
    state: { trainSteps: number; validRecords: number; rejected?: number; firstStep: number | null; lastStep: number | null };
    unjudged: string[];
  },
  extra: { partialLastLine?: boolean } = {},
): DiagnosisJson {
  return {
    run,
    findings: d.findings,
    notes: d.notes,
    steps: {
      first: d.state.firstStep,
      last: d.state.lastStep,
      train: d.state.trainSteps,
      valid: d.state.validRecords,
      ...(d.state.rejected ? { rejected: d.state.rejected } : {}),
    },
    unjudged: d.unjudged,
    ...(extra.partialLastLine ? { partialLastLine: true } : {}),
  };
}

/** JSON text with NaN / Infinity spelled as strings (JSON has no NaN), as metrics.jsonl does. */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), indent);
}
