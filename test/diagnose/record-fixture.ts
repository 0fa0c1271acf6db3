/**
 * Copy a real run folder into test/fixtures/diagnose/<name>/ (by hand, after a training run):
 *   npx tsx test/diagnose/record-fixture.ts <run folder or metrics .jsonl> <name>
 * Keeps every record and every number the detectors read; drops what they do not (timings,
 * memory, micro-step counters, per-head losses, z-loss, post-clip norm, capacity drops, the loss
 * scale of f32 runs, header.json's plan text) and
 * writes numbers with 9 significant digits (exact for the float32 values the GPU computed) to
 * stay small. Nothing is invented.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const DROP_TRAIN = ['microStep', 'microSteps', 'headLosses', 'tokens', 'ms', 'submits', 'liveBytes', 'peakBytes', 'scaleEvent', 'z', 'gradNormPostClip'];
/** Dropped from f32 runs only, where they are always 1 and false. */
const DROP_F32 = ['lossScale', 'overflow'];
/** 9 significant digits round-trip every float32. */
const f32 = (_k: string, v: unknown) => (typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v) ? Number(v.toPrecision(9)) : v);
const DROP_HEADER = ['plan'];

export function recordFixture(src: string, name: string, root = resolve(import.meta.dirname, '..', 'fixtures', 'diagnose')): string {
  const isFile = statSync(src).isFile();
  const dir = isFile ? dirname(src) : src;
  const metrics = isFile ? src : join(dir, 'metrics.jsonl');
  const out = join(root, name);
  mkdirSync(out, { recursive: true });
  const header = join(dir, 'header.json');
  const h = !isFile && existsSync(header) ? (JSON.parse(readFileSync(header, 'utf8')) as Record<string, unknown>) : null;
  const f16 = (h?.config as { precision?: { activations?: string } } | undefined)?.precision?.activations === 'f16';
  const lines = readFileSync(metrics, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      if (r.kind === 'train') {
        for (const k of DROP_TRAIN) delete r[k];
        if (!f16 && r.lossScale === 1 && r.overflow === false) for (const k of DROP_F32) delete r[k];
        if (Array.isArray(r.routing)) for (const l of r.routing as Record<string, unknown>[]) delete l.dropped;
      }
      return JSON.stringify(r, f32);
    });
  writeFileSync(join(out, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  if (h) {
    for (const k of DROP_HEADER) delete h[k];
    writeFileSync(join(out, 'header.json'), `${JSON.stringify(h)}\n`);
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const [src, name] = process.argv.slice(2);
  if (!src || !name) {
    console.error('usage: npx tsx test/diagnose/record-fixture.ts <run folder or metrics .jsonl> <name>');
    process.exit(2);
  }
  console.log(recordFixture(resolve(src), name));
}
