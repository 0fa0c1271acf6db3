/**
 * Child process for the crash tests: writes a big checkpoint under a root and reports each stage
 * on stdout (`phase <name>`). With a pause stage it stops there (printing `paused`) and waits to
 * be killed; with `none` it runs straight through, so a timed kill lands wherever the write is.
 *
 *   node --import tsx crash-writer.ts <root> <name> <floats> <pause: phase | 'first-chunk' | 'none'>
 */
import { writeCheckpoint, type CheckpointProgress } from '../../src/train/checkpoint.ts';
import type { TensorSource } from '../../src/train/safetensors.ts';

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

async function onProgress(e: CheckpointProgress): Promise<void> {
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
