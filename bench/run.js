#!/usr/bin/env node
// `npm run bench [-- suite ...] [--quick]` (bench/main.ts). Registers tsx so the TypeScript runs directly.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('../src/util/cli-errors.ts');
process.exitCode = await runCli('bench/run.js', () => import('./main.ts'), process.argv.slice(2));
