// Bundle entry: the train.js CLI.
import { main } from '../../../src/train/cli/train.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
process.exitCode = await main(process.argv.slice(2));
