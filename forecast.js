#!/usr/bin/env node
// Entry point: `node forecast.js --checkpoint runs/small-moe --evaluate`. Registers tsx so the
// TypeScript sources run directly after `npm ci`, with no separate build step.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('./src/util/cli-errors.ts');
process.exitCode = await runCli('forecast.js', () => import('./src/forecast/cli.ts'), process.argv.slice(2));
