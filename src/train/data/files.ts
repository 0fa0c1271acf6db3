/** Reading a source file with the two errors every loader shares: missing and empty. */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { DataError } from './errors.ts';

export function resolveDataPath(path: string, cwd: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path);
}

export function readTextFile(path: string, cwd: string): { file: string; text: string } {
  const file = resolveDataPath(path, cwd);
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch {
    throw new DataError(`data file not found: ${file} (resolved from "${path}" against ${cwd}): check data.source.path in your config`);
  }
  if (!isFile) throw new DataError(`data path is not a file: ${file}: check data.source.path in your config`);
  const text = readFileSync(file, 'utf8');
  if (text.trim().length === 0) throw new DataError(`data file is empty: ${file}: point data.source.path at a file with data`);
  return { file, text };
}
