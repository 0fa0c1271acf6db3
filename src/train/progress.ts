/** Progress display: a bar with ETA on a terminal (cli-progress), plain lines otherwise. */
import cliProgress from 'cli-progress';
import { fmt } from './metrics.ts';
import type { StepMetrics } from './trainer.ts';

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
      { format: 'step {value}/{total} [{bar}] {percentage}% | loss {loss} | gnorm {gnorm} | {tps} tok/s | ETA {eta_formatted}', stream: process.stderr, hideCursor: true },
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
          `${m.clippedFraction > 0 ? ` clipped ${(m.clippedFraction * 100).toFixed(1)}%` : ''} max-share ${m.routing.map((r) => r.maxShare.toFixed(2)).join('/')} ` +
          `${Math.round((m.tokens / m.ms) * 1000)} tok/s${m.lossScale !== 1 ? ` scale ${m.lossScale}` : ''}${m.overflow ? ' OVERFLOW' : m.skipped ? ' SKIPPED' : ''}`,
      ),
    log: (l) => console.error(l),
    stop() {},
  };
}
