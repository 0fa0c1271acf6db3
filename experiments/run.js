#!/usr/bin/env node
// Entry point: `npm run experiment -- <name|all> [--fast]`. Registers tsx (as train.js does) so
// the TypeScript runner runs directly, with no build step.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
const { main } = await import('./runner.ts');
process.exitCode = await main(process.argv.slice(2));
