// Bundle entry: `run.sh dashboard`, the dashboard.js CLI through the one error boundary (as dashboard.js does).
import { runCli } from '../../../src/util/cli-errors.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
process.exitCode = await runCli('dashboard.js', () => import('../../../src/train/cli/dashboard.ts'), process.argv.slice(2));
