/** Progress display: a bar with ETA on a terminal (cli-progress), plain lines otherwise. */
import cliProgress from 'cli-progress';
import { basename } from 'node:path';
import type { LoadProgress } from '../data/files.ts';
import { fmt } from './metrics.ts';
import type { StepMetrics } from '../step/trainer.ts';

export interface Progress {
  update(m: StepMetrics): void;
  log(line: string): void;
  stop(): void;
}

export function createProgress(mode: 'auto' | 'bar' | 'plain' | 'none', total: number, start: number): Progress {
  const tty = process.stderr.isTTY === true;
  if (mode === 'none') return { update() {}, log: (l) => console.error(l), stop() {} };
  if (mode === 'bar' || (mode === 'auto' && tty)) {
    // A MultiBar with one bar: it can print log lines above the bar without tearing it.
    const multi = new cliProgress.MultiBar(
      {
        format: 'step {value}/{total} [{bar}] {percentage}% | loss {loss} | gnorm {gnorm} | {tps} tok/s | ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const bar = multi.create(total, start, { loss: '-', gnorm: '-', tps: '-' });
    return {
      update: (m) => bar.update(m.step, { loss: fmt(m.loss), gnorm: fmt(m.gradNorm, 3), tps: Math.round((m.tokens / m.ms) * 1000) }),
      log: (l) => multi.log(`${l}\n`),
      stop: () => multi.stop(),
    };
  }
  return {
    update: (m) =>
      console.error(
        `step ${m.step}/${total} loss ${fmt(m.loss)} (main ${fmt(m.lossMain)} aux ${fmt(m.aux)}) lr ${fmt(m.lr)} gnorm ${fmt(m.gradNorm, 3)}` +
          `${m.clippedFraction > 0 ? ` clipped ${(m.clippedFraction * 100).toFixed(1)}%` : ''} max-share ${m.routing.map((r) => (r.maxShare === null ? 'n/a' : r.maxShare.toFixed(2))).join('/')} ` +
          `${Math.round((m.tokens / m.ms) * 1000)} tok/s${m.lossScale !== 1 ? ` scale ${m.lossScale}` : ''}${m.overflow ? ' OVERFLOW' : m.skipped ? ' SKIPPED' : ''}`,
      ),
    log: (l) => console.error(l),
    stop() {},
  };
}

/** Files smaller than this load in a second or two: no progress display. */
export const LOAD_PROGRESS_MIN_BYTES = 16 << 20;

/**
 * Bytes read of a long data load: a bar on a terminal, a line every 10% otherwise (logs stay
 * short), nothing for small files or with logging.progress "none".
 */
export function createLoadProgress(mode: 'auto' | 'bar' | 'plain' | 'none', file: string, total: number): LoadProgress {
  const noop: LoadProgress = { advance() {}, done() {} };
  if (mode === 'none' || total < LOAD_PROGRESS_MIN_BYTES) return noop;
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const name = basename(file);
  const t0 = performance.now();
  let read = 0;
  if (mode === 'bar' || (mode === 'auto' && process.stderr.isTTY === true)) {
    const bar = new cliProgress.SingleBar(
      { format: `[data] reading ${name} [{bar}] {percentage}% | {mb} of ${mb(total)} MB | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { mb: '0.0' });
    return {
      advance: (n) => bar.update((read += n), { mb: mb(read) }),
      done: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  console.error(`[data] reading ${name} (${mb(total)} MB)`);
  return {
    advance(n) {
      read += n;
      for (; nextTenth < 10 && read >= (total * nextTenth) / 10; nextTenth++)
        console.error(`[data] reading ${name}: ${nextTenth * 10}% (${mb(read)} of ${mb(total)} MB, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    },
    // Also called when a load fails or is stopped part-way: then there is nothing to report.
    done: () => {
      if (read >= total) console.error(`[data] read ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    },
  };
}
