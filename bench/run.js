#!/usr/bin/env node
// `npm run bench [-- suite ...] [--quick]` (bench/main.ts), or `node bench/run.js mesa-lane` (bench/mesa-lane.ts,
// the two-driver lane; its workers are `mesa-lane-worker`). Registers tsx so the TypeScript runs directly.
import { register } from 'tsx/esm/api';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
register();
// The one error boundary (src/util/cli-errors.ts): no stack trace but for a bug, one exit-code table.
const { runCli } = await import('../src/util/cli-errors.ts');
const argv = process.argv.slice(2);
const lane = argv[0] === 'mesa-lane' || argv[0] === 'mesa-lane-worker';
process.exitCode = await runCli('bench/run.js', () => (lane ? import('./mesa-lane.ts') : import('./main.ts')), argv);
