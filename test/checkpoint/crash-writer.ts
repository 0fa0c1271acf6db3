/**
 * Child process for the crash tests: writes a big checkpoint under a root and reports each stage
 * on stdout (`phase <name>`). At the pause point it stops (printing `paused`) and waits to be
 * killed, so every kill lands at a known point of the write (no timing race):
 *
 *   node --import tsx crash-writer.ts <root> <name> <floats> <pause>
 *
 * pause: a phase name; 'first-chunk' (the first chunk of model.safetensors is on disk);
 * 'bytes:<file>:<n>' (the first chunk of <file> that brings it to >= n bytes is on disk).
 */
import { writeCheckpoint, type CheckpointProgress } from '../../src/train/persist/checkpoint.ts';
import type { TensorSource } from '../../src/train/persist/safetensors.ts';

const [root, name, floatsArg, pause] = process.argv.slice(2);
if (!root || !name || !floatsArg || !pause) throw new Error('usage: crash-writer.ts <root> <name> <floats> <pause>');
const floats = Number(floatsArg);

const big = new Float32Array(floats);
for (let i = 0; i < floats; i++) big[i] = (i % 1000) * 0.5;
const model = new Map<string, TensorSource>([
  ['big.weight', { shape: [floats], data: big }],
  ['small.weight', { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
]);
const optimizer = new Map<string, TensorSource>([['big.weight.exp_avg', { shape: [floats], data: big }]]);

let announcedWriting = false;
const hang = () => new Promise<never>(() => setInterval(() => {}, 1 << 30));

const bytesPause = /^bytes:([^:]+):(\d+)$/.exec(pause);

async function onProgress(e: CheckpointProgress): Promise<void> {
  if (e.phase === 'writing' && bytesPause) {
    if (e.file === bytesPause[1] && (e.bytesWritten ?? 0) >= Number(bytesPause[2])) {
      process.stdout.write(`phase writing ${e.file} ${e.bytesWritten}\npaused\n`);
      await hang();
    }
    return;
  }
  if (e.phase === 'writing') {
    if (announcedWriting) return;
    announcedWriting = true;
    process.stdout.write(`phase writing ${e.file} ${e.bytesWritten}\n`);
    if (pause === 'first-chunk') {
      process.stdout.write('paused\n');
      await hang();
    }
    return;
  }
  process.stdout.write(`phase ${e.phase}\n`);
  if (e.phase === pause) {
    process.stdout.write('paused\n');
    await hang();
  }
}

await writeCheckpoint(root, { model, optimizer, state: { step: 2, config: { writer: 'crash-writer' } } }, { name, onProgress });
process.stdout.write('done\n');
