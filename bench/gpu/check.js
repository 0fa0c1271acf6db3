#!/usr/bin/env node
// From the repository: `node bench/gpu/check.js --out DIR [--quick] [--report]` (bench/gpu/check.ts).
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
register();
const { main } = await import('./check.ts');
process.exitCode = await main(process.argv.slice(2));
