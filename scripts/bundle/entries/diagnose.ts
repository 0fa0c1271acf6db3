// Bundle entry: `run.sh diagnose`, the diagnose.js CLI through the one error boundary (as diagnose.js does).
import { runCli } from '../../../src/util/cli-errors.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
process.exitCode = await runCli('diagnose.js', () => import('../../../src/diagnose/cli.ts'), process.argv.slice(2));
