/**
 * A run that explains itself (issue 25): detectors over the metrics stream that say what went
 * wrong, why, the config change that fixes it and the experiment that reproduces it.
 * Pure TypeScript (no Node built-ins, no GPU); the CLI is src/diagnose/cli.ts. docs/FINDINGS.md.
 */
export { Diagnoser, diagnoseRun, sortFindings, DETECTORS, type Diagnosis, type DiagnosisState } from './diagnoser.ts';
export { classifyBaseline, forecastBaseline, forecastBaselineBatch, huber, type BaselineBatch } from './baseline.ts';
export { diagnosisHeaderFields, type DiagnosisHeaderInput } from './header-fields.ts';
export { sampleIndices, summarizeWindows, EXTREME_VALUE, type WindowSample } from './data-stats.ts';
export { formatChanges, formatFinding, formatSummary, jsonText, toJson, type DiagnosisJson, type FormatOptions } from './format.ts';
export { parseMetricsText, toRecord, MetricsTextError, type ParsedMetrics } from './records.ts';
export { runContext, type RunContext } from './context.ts';
export { BAD_START } from './detectors/bad-start.ts';
export { CLIP } from './detectors/clip.ts';
export { ROUTING } from './detectors/routing.ts';
export { AUX } from './detectors/aux.ts';
export { NON_FINITE } from './detectors/non-finite.ts';
export { STABILITY } from './detectors/stability.ts';
export { DATA } from './detectors/data.ts';
export type * from './types.ts';
