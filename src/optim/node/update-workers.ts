/**
 * The host AdamW's threads on Node (src/optim/host-adamw.ts UpdateWorkers): worker_threads
 * running the platform-free update body, one per core by default.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { UpdateWorkers } from '../host-adamw.ts';

/** Node's message loop around the update body's setup(workerData). */
const prelude = (body: string) => `
const { parentPort, workerData } = require('node:worker_threads');
${body}
const handle = setup(workerData);
parentPort.on('message', (msg) => parentPort.postMessage(handle(msg)));
`;

export const nodeUpdateWorkers: UpdateWorkers = {
  defaultThreads: availableParallelism(),
  spawn(body, data, events) {
    const w = new Worker(prelude(body), { eval: true, workerData: data });
    w.on('message', (id: number) => events.done(id));
    w.on('error', events.fail);
    w.on('exit', (code) => code !== 0 && events.fail(new Error(`exited with code ${code}`)));
    // Idle workers must not keep the process alive; a worker with a job in flight does.
    w.unref();
    return {
      post: (msg) => w.postMessage(msg),
      busy: (inFlight) => (inFlight ? w.ref() : w.unref()),
      terminate: () => void w.terminate(),
    };
  },
};
