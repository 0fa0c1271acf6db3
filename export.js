#!/usr/bin/env node
// Entry point: `node export.js --checkpoint runs/small-moe --out hf/small-moe`. Registers tsx so
// the TypeScript sources run directly after `npm ci`, with no separate build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./src/train/cli/export.ts');
process.exitCode = await main(process.argv.slice(2));
