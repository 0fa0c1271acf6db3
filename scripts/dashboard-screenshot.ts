/**
 * The README's dashboard screenshot, from a real run: starts `node train.js <args> --ui 0`, follows
 * it in headless Chromium to the end and saves the top of the page.
 *
 *   npx tsx scripts/dashboard-screenshot.ts docs/img/dashboard.png --config small-moe.json --set logging.dir=runs/shot
 */
import { resolve } from 'node:path';
import { launchChromium } from '../test/ui/browser.ts';
import { REPO, startCli } from '../test/ui/helpers.ts';

const [out, ...args] = process.argv.slice(2);
if (!out || !args.includes('--config')) {
  console.error('usage: npx tsx scripts/dashboard-screenshot.ts <out.png> --config <file> [train.js flags]');
  process.exit(2);
}
const browser = await launchChromium();
try {
  const run = await startCli(process.cwd(), [resolve(REPO, 'train.js'), ...args, '--ui', '0']);
  const page = await browser.newPage({ viewport: { width: 1280, height: 1150 } });
  await page.goto(run.url);
  const code = await run.exit;
  if (code !== 0) throw new Error(`train.js exited with ${code}:\n${run.stderr()}`);
  await page.waitForFunction(() => window.__dashboard.stats.state === 'ended', null, { timeout: 30_000 });
  // The final event's redraw comes within the page's 250 ms coalescing interval (src/ui/page/main.ts).
  await page.waitForTimeout(1000);
  await page.screenshot({ path: out });
  console.error(`[screenshot] ${out}`);
} finally {
  await browser.close();
}
