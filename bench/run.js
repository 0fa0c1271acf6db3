#!/usr/bin/env node
// `npm run bench [-- suite ...] [--quick]` (bench/main.ts). Registers tsx so the TypeScript runs directly.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
