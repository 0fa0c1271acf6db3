/**
 * `npm run build:web [-- --out DIR]`: the browser trainer (src/web/) as static files, dist/web/ by
 * default:
 *
 *   index.html, app.js, app.css   the page, bundled by esbuild with the engine and the WGSL shaders
 *                                 embedded (the `#shader-source` module is generated here from
 *                                 shaders/, the same files Node reads: src/kernels/node/shader-files.ts)
 *   sensor-temperature.json       small-moe.json's data set, parsed here by the engine's own loader
 *                                 (src/train/data/datasets.ts) and fetched by the page
 *
 * The core the page bundles uses no Node built-in (test/architecture/imports.test.ts); a module
 * that did would fail this build (esbuild resolves no `node:` import for the browser).
 */
import { build, type Plugin } from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../../src/train/data/datasets.ts';
import { BUNDLED_DATASET, encodeValue, type BundledSeries } from '../../src/web/data.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** shaders/*.wgsl and shaders/include/*.wgsl by name ('fill', 'include/grid'); the tests' and benchmarks' shaders stay out. */
function shaderSources(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of ['', 'include/']) {
    const dir = join(ROOT, 'shaders', sub);
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.wgsl')) out[`${sub}${f.slice(0, -5)}`] = readFileSync(join(dir, f), 'utf8');
  }
  return out;
}

/** `#shader-source` for the browser: the shaders embedded, looked up by name like the Node module reads files. */
const shaderPlugin = (sources: Record<string, string>): Plugin => ({
  name: 'shader-source',
  setup(b) {
    b.onResolve({ filter: /^#shader-source$/ }, () => ({ path: 'shader-source', namespace: 'webgpu-moe' }));
    b.onLoad({ filter: /^shader-source$/, namespace: 'webgpu-moe' }, () => ({
      loader: 'js',
      contents: `const SHADERS = ${JSON.stringify(sources)};
export function shaderSource(name) {
  const s = SHADERS[name];
  if (s === undefined) throw new Error('no shader ' + name + '.wgsl in this bundle (it embeds shaders/*.wgsl and shaders/include/*.wgsl)');
  return s;
}`,
    }));
  },
});

/**
 * zod's message translations: `z.locales` re-exports all of them, which defeats tree shaking
 * (~250 KiB minified); the engine's messages are English, and zod's default locale (en) is imported
 * on its own, so the page gets an index with English only.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (a) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)$/.test(a.resolveDir)
        ? { path: join(a.resolveDir, '..', 'locales', 'en-only.js'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (a) => ({
      contents: `export { default as en } from './en.js';`,
      loader: 'js',
      resolveDir: dirname(a.path),
    }));
  },
};

export interface WebBuild {
  out: string;
  /** Bytes of each file written. */
  files: Record<string, number>;
  shaders: number;
}

export async function buildWeb(out = join(ROOT, 'dist', 'web')): Promise<WebBuild> {
  const shaders = shaderSources();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { app: join(ROOT, 'src', 'web', 'main.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    outdir: out,
    logLevel: 'silent',
    plugins: [shaderPlugin(shaders), zodEnglishOnly],
    // csv-parse's sync API uses Node's Buffer; the package ships a browser build of the same parser.
    alias: { 'csv-parse/sync': 'csv-parse/browser/esm/sync' },
    legalComments: 'none',
  });
  writeFileSync(join(out, 'index.html'), readFileSync(join(ROOT, 'src', 'web', 'index.html')));
  const series: BundledSeries[] = loadDataset(BUNDLED_DATASET).map((s) => ({ id: s.id, values: Array.from(s.values, encodeValue) }));
  writeFileSync(join(out, `${BUNDLED_DATASET}.json`), JSON.stringify(series));
  const files = Object.fromEntries(readdirSync(out).map((f) => [f, statSync(join(out, f)).size]));
  return { out, files, shaders: Object.keys(shaders).length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const r = await buildWeb(at >= 0 && args[at + 1] ? resolve(args[at + 1]) : undefined);
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.error(`build:web: ${r.out} (${r.shaders} shaders embedded)`);
  for (const [f, n] of Object.entries(r.files)) console.error(`  ${f} ${kib(n)}`);
}
