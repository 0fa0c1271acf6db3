#!/usr/bin/env node
// Entry point: `node forecast.js --checkpoint runs/small-moe --evaluate`. Registers tsx so the
// TypeScript sources run directly after `npm ci`, with no separate build step.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
const { main } = await import('./src/forecast/cli.ts');
process.exitCode = await main(process.argv.slice(2));
