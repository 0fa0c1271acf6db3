#!/usr/bin/env node
// Entry point: `node train.js --config small-moe.json`. Registers tsx so the TypeScript
// sources run directly after `npm ci`, with no separate build step.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('./src/util/cli-errors.ts');
process.exitCode = await runCli('train.js', () => import('./src/train/cli/train.ts'), process.argv.slice(2));
