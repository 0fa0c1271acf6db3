#!/usr/bin/env node
// Entry point: `node export.js --checkpoint runs/small-moe --out hf/small-moe`. Registers tsx so
// the TypeScript sources run directly after `npm ci`, with no separate build step.
import { register } from 'tsx/esm/api';

register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('./src/util/cli-errors.ts');
process.exitCode = await runCli('export.js', () => import('./src/train/cli/export.ts'), process.argv.slice(2));
