/**
 * Debian's Chromium driven by playwright-core (Playwright's own browser download does not work
 * on these machines; scripts/setup.sh installs the `chromium` package). No Chromium is a failure
 * with the fix in the message, never a silent skip (as a missing WebGPU adapter is for the GPU
 * tests, src/kernels/errors.ts).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const executable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** CHROMIUM_PATH, else /usr/bin/chromium, else `chromium` on PATH (what scripts/setup.sh looks for). */
export function findChromium(): string | null {
  if (process.env.CHROMIUM_PATH) return executable(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : null;
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((d) => join(d, 'chromium'));
  return ['/usr/bin/chromium', ...onPath].find(executable) ?? null;
}

/**
 * `webgpu`: WebGPU on Chromium's software adapter, SwiftShader (the same on every machine, GPU or
 * not); the page must come from http://127.0.0.1 or https (a secure context), not a data: URL.
 */
export async function launchChromium(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  const path = findChromium();
  if (!path) {
    const where = process.env.CHROMIUM_PATH ? `CHROMIUM_PATH=${process.env.CHROMIUM_PATH} is not an executable` : 'no Chromium at /usr/bin/chromium or on PATH';
    throw new Error(`${where}: run bash scripts/setup.sh (it installs Debian's chromium package), or set CHROMIUM_PATH to a Chromium binary`);
  }
  return chromium.launch({
    executablePath: path,
    // The sandbox needs user namespaces that CI containers (root) lack; the background-networking
    // flags keep Chromium from calling out of a machine with no outside network. Playwright gives
    // each launch a fresh empty profile of its own.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(opts.webgpu ? ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'] : []),
    ],
  });
}
