/**
 * The page's script and styles, bundled from src/ui/page/ by esbuild when the server starts (tens
 * of milliseconds, once per process): the repository stays build-step free, like train.js with tsx.
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

async function bundle(): Promise<PageAssets> {
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
  assets ??= bundle().catch((e: unknown) => {
    assets = null;
    throw e;
  });
  return assets;
}
