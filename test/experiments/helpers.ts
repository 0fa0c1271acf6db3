/** Fast scenario runs for the tests: real CLI runs into a scratch directory, reports included. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ArmFindings } from '../../experiments/evaluate.ts';
import { runScenario, type ScenarioResult } from '../../experiments/runner.ts';
import type { Scenario } from '../../experiments/scenarios.ts';
import { scratch } from '../train/cli-helpers.ts';

export async function runFast<O>(scenario: Scenario<O>, root = scratch()): Promise<ScenarioResult<O>> {
  const r = await runScenario(scenario, { mode: 'fast', runsRoot: join(root, 'runs'), resultsRoot: join(root, 'results') });
  // The report is part of the product: it must exist and quote the outcome.
  if (!existsSync(r.readme) || r.svgs.length === 0) throw new Error(`${scenario.name}: no report written`);
  return r;
}

/** The diagnosis (`node diagnose.js` on the run folder) of the run the report labels `label`. */
export function diagnosisOf(r: ScenarioResult<unknown>, label: string): ArmFindings {
  const a = r.findings.find((x) => x.label === label);
  if (!a) throw new Error(`no diagnosed run labelled "${label}" (have: ${r.findings.map((x) => x.label).join(', ')})`);
  return a;
}

/**
 * Every run's diagnosis is what its scenario expects (failure arms name their kinds, the fix arm
 * none of those kinds, and in fact no finding at all), and the report's findings table says so.
 */
export function expectDiagnosisAsScenarioSays(r: ScenarioResult<unknown>): void {
  expect(r.findings.length).toBeGreaterThan(0);
  for (const a of r.findings) {
    expect(a.missing, `${a.label}: findings the diagnosis should name`).toEqual([]);
    expect(a.unexpected, `${a.label}: failure findings on a fix arm`).toEqual([]);
    if (a.forbidden.length) expect(a.ids, `${a.label}: a fix arm gets no finding`).toEqual([]);
  }
  const text = readFileSync(r.readme, 'utf8');
  expect(text).toContain('## What the diagnosis says');
  expect(text).not.toMatch(/: \*\*no\*\*:/);
}

/** Generous: each CLI spawn is seconds of startup on lavapipe, more when the machine is shared. */
export const SCENARIO_TIMEOUT = 240_000;
