// Bundle entry: `run.sh forecast`, the forecast.js CLI through the one error boundary (as forecast.js does).
import { runCli } from '../../../src/util/cli-errors.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
process.exitCode = await runCli('forecast.js', () => import('../../../src/forecast/cli.ts'), process.argv.slice(2));
