#!/usr/bin/env node
// Entry point: `node train.js --config small-moe.json`. Registers tsx so the TypeScript
// sources run directly after `npm ci`, with no separate build step.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
const { main } = await import('./src/train/cli/train.ts');
process.exitCode = await main(process.argv.slice(2));
