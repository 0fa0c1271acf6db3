/**
 * Write a whole output folder atomically: the files are made in `<out>.tmp-<pid>-<hex>` beside it
 * and fsynced, then the folder is renamed into place (an existing one is moved aside first and
 * removed after). So `<out>` is always absent, the previous complete output, or the new complete
 * output: a failure or a kill half-way leaves no half-written folder behind under that name.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Write a text file and fsync it. */
export async function writeSyncedText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Build `out` with `fill(tmpDir)` and swap it into place; `out`'s parent is created if needed. */
export async function replaceFolderAtomic(out: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${tag()}`;
  await mkdir(tmp);
  try {
    await fill(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  // rename() cannot replace a non-empty folder: move the old one aside, then swap in the new one.
  const old = `${out}.old-${tag()}`;
  let moved = false;
  try {
    await rename(out, old);
    moved = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  try {
    await rename(tmp, out);
  } catch (e) {
    if (moved) await rename(old, out);
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  if (moved) await rm(old, { recursive: true, force: true });
}

/** Files of a folder written by writeFiles, relative path -> text. */
export async function writeFiles(dir: string, files: ReadonlyMap<string, string>): Promise<void> {
  for (const [rel, text] of files) await writeSyncedText(join(dir, rel), text);
}
