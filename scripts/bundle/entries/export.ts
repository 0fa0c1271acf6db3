// Bundle entry: `run.sh export`, the export.js CLI through the one error boundary (as export.js does).
import { runCli } from '../../../src/util/cli-errors.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
process.exitCode = await runCli('export.js', () => import('../../../src/train/cli/export.ts'), process.argv.slice(2));
