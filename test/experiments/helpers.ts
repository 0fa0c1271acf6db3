/** Fast scenario runs for the tests: real CLI runs into a scratch directory, reports included. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runScenario, type ScenarioResult } from '../../experiments/runner.ts';
import type { Scenario } from '../../experiments/scenarios.ts';
import { scratch } from '../train/cli-helpers.ts';

export async function runFast<O>(scenario: Scenario<O>, root = scratch()): Promise<ScenarioResult<O>> {
  const r = await runScenario(scenario, { mode: 'fast', runsRoot: join(root, 'runs'), resultsRoot: join(root, 'results') });
  // The report is part of the product: it must exist and quote the outcome.
  if (!existsSync(r.readme) || r.svgs.length === 0) throw new Error(`${scenario.name}: no report written`);
  return r;
}

/** Generous: each CLI spawn is seconds of startup on lavapipe, more when the machine is shared. */
export const SCENARIO_TIMEOUT = 240_000;
