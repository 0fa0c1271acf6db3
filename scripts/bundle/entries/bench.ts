// Bundle entry: the benchmark suites (bench/main.ts).
import { main } from '../../../bench/main.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
process.exitCode = await main(process.argv.slice(2));
