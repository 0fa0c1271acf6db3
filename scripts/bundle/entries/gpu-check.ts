// Bundle entry: the node side of the GPU check (bench/gpu/check.ts).
import { main } from '../../../bench/gpu/check.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
process.exitCode = await main(process.argv.slice(2));
