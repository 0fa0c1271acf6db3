/**
 * A run that explains itself: detectors over the metrics stream that say what went wrong, why,
 * the config change that fixes it and the experiment that reproduces it (docs/FINDINGS.md).
 * Pure TypeScript (no Node built-ins, no GPU); the CLI is src/diagnose/cli.ts. This is what the
 * layers above use: the training run (src/train/run/diagnosis.ts) and the dashboard's page.
 */
export { Diagnoser } from './diagnoser.ts';
export { diagnosisHeaderFields } from './header-fields.ts';
export { formatChanges, jsonText, toJson } from './format.ts';
export type * from './types.ts';
