#!/usr/bin/env node
// Entry point: `npm run experiment -- <name|all> [--fast]`. Registers tsx (as train.js does) so
// the TypeScript runner runs directly, with no build step.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('../src/util/cli-errors.ts');
process.exitCode = await runCli('experiments/run.js', () => import('./runner.ts'), process.argv.slice(2));
