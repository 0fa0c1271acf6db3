import { fileURLToPath } from 'node:url';
import { DataError } from '../../src/train/data/errors.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/data/', import.meta.url));

/** Run f, expect a DataError, return its message (for several assertions on one error). */
export function dataErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DataError) return e.message;
    throw e;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

/** dataErrorOf for a loader that returns a promise (the file loaders stream). */
export async function dataErrorOfAsync(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (e instanceof DataError) return e.message;
    throw e;
  }
  throw new Error('expected a DataError, nothing was thrown');
}
