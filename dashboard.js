#!/usr/bin/env node
// Entry point: `node dashboard.js runs/small-moe [runs/other ...]`. Registers tsx so the
// TypeScript sources run directly after `npm ci`, with no separate build step (as train.js).
import { register } from 'tsx/esm/api';

register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('./src/util/cli-errors.ts');
process.exitCode = await runCli('dashboard.js', () => import('./src/train/cli/dashboard.ts'), process.argv.slice(2));
