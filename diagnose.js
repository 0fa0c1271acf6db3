#!/usr/bin/env node
// Entry point: `node diagnose.js runs/small-moe [runs/other ...] [--json]`. Registers tsx so the
// TypeScript sources run directly after `npm ci`, with no separate build step (as train.js).
import { register } from 'tsx/esm/api';

register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('./src/util/cli-errors.ts');
process.exitCode = await runCli('diagnose.js', () => import('./src/diagnose/cli.ts'), process.argv.slice(2));
