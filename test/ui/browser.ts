/**
 * Debian's Chromium driven by playwright-core (Playwright's own browser download does not work
 * on these machines; scripts/setup.sh installs the `chromium` package). No Chromium is a failure
 * with the fix in the message, never a silent skip.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run bash scripts/setup.sh (it installs Debian's chromium package), or set CHROMIUM_PATH to a Chromium binary`);
  return chromium.launch({
    executablePath: CHROMIUM,
    // The sandbox needs user namespaces that CI containers (root) lack; the background-networking
    // flags keep Chromium from calling out of a machine with no outside network. Playwright gives
    // each launch a fresh empty profile of its own.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
