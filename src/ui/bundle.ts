/**
 * The page's script and styles, bundled from src/ui/page/ by esbuild when the server starts (tens
 * of milliseconds, once per process): the repository stays build-step free, like train.js with tsx.
 * The self-contained bundle (scripts/bundle/bundle.mjs) has neither esbuild's binary nor the page
 * sources: it calls buildPage() at bundle time and replaces this module with one whose
 * pageAssets() returns those assets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface PageAssets {
  html: string;
  js: string;
  css: string;
}

const PAGE = join(import.meta.dirname, 'page');
let assets: Promise<PageAssets> | null = null;

/** The page, built from its sources. */
export async function buildPage(): Promise<PageAssets> {
  const out = await build({
    entryPoints: [join(PAGE, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  });
  const file = (ext: string) => out.outputFiles.find((f) => f.path.endsWith(ext))?.text ?? '';
  return { html: readFileSync(join(PAGE, 'index.html'), 'utf8'), js: file('.js'), css: file('.css') };
}

export function pageAssets(): Promise<PageAssets> {
  assets ??= buildPage().catch((e: unknown) => {
    assets = null;
    throw e;
  });
  return assets;
}
