/**
 * The shader sources on Node: shaders/<name>.wgsl read from disk (package.json maps
 * `#shader-source` here under Node; the browser bundle gets the same files embedded,
 * scripts/web/build.ts). A Node edge of the engine: nothing in the core imports it directly
 * (test/architecture/imports.test.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * shaders/ is found above this module: three levels up in the repository, one level up in the
 * self-contained bundle (scripts/bundle/bundle.mjs puts the bundled JavaScript in lib/ beside shaders/).
 */
function shaderDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'shaders', 'fill.wgsl'))) return join(dir, 'shaders');
  }
  throw new Error(`cannot find the shaders/ folder above ${fileURLToPath(import.meta.url)}: the installation is incomplete`);
}

const SHADER_DIR = shaderDir();

/** The text of shaders/<name>.wgsl. */
export function shaderSource(name: string): string {
  return readFileSync(join(SHADER_DIR, `${name}.wgsl`), 'utf8');
}
