/** Recorded real runs (test/fixtures/diagnose/<name>/, see README.md there) read back for the detectors. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { diagnoseRun, type Diagnosis } from '../../src/diagnose/diagnoser.ts';
import { parseMetricsText } from '../../src/diagnose/records.ts';
import type { DiagRecord, RunHeaderInput } from '../../src/diagnose/types.ts';

export const FIXTURES = resolve(import.meta.dirname, '..', 'fixtures', 'diagnose');

export interface Fixture {
  header: RunHeaderInput;
  records: DiagRecord[];
  /** The raw metrics lines (objects as the logger wrote them). */
  raw: Record<string, unknown>[];
}

export function fixture(name: string): Fixture {
  const dir = join(FIXTURES, name);
  const text = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
  const header = existsSync(join(dir, 'header.json')) ? (JSON.parse(readFileSync(join(dir, 'header.json'), 'utf8')) as RunHeaderInput) : {};
  return {
    header,
    records: parseMetricsText(text, name).records,
    raw: text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export function diagnoseFixture(name: string, header: Partial<RunHeaderInput> = {}): Diagnosis {
  const f = fixture(name);
  return diagnoseRun({ ...f.header, ...header }, f.records);
}

/** The finding ids of a diagnosis, sorted. */
export const ids = (d: Diagnosis): string[] => d.findings.map((f) => f.id).sort();

/** The data section of the default run (small-moe.json): sensor-temperature, as the engine reads it. */
export const DEFAULT_DATA = {
  source: { kind: 'dataset', name: 'sensor-temperature' },
  contextLength: 64,
  stride: 16,
  normalize: 'window',
  nonFinite: 'interpolate',
  validFraction: 0.1,
};
