#!/usr/bin/env node
// Entry point: `node diagnose.js runs/small-moe [runs/other ...] [--json]`. Registers tsx so the
// TypeScript sources run directly after `npm ci`, with no separate build step (as train.js).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./src/diagnose/cli.ts');
process.exitCode = await main(process.argv.slice(2));
