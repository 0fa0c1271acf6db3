// Bundle entry: `run.sh train`, the train.js CLI through the one error boundary (as train.js does).
import { runCli } from '../../../src/util/cli-errors.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // silences a Mesa warning on machines without one
process.exitCode = await runCli('train.js', () => import('../../../src/train/cli/train.ts'), process.argv.slice(2));
