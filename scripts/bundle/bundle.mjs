#!/usr/bin/env node
// `npm run bundle [-- --out DIR]`: the engine as a self-contained folder for a machine that has a
// GPU driver and nothing else (no Node, no npm, no network): dist/webgpu-moe-linux-x64/ by default.
//
//   run.sh                   entry: `./run.sh train|forecast|export|dashboard|diagnose|bench|gpu-check|node ...`
//   bin/node.gz              this Node binary (official build; links only libc/libstdc++)
//   lib/*.mjs                the engine bundled by esbuild, one entry per command, the dashboard
//                            page built in (src/ui/bundle.ts: no esbuild at run time)
//   lib/node_modules/webgpu  Dawn's linux-x64 dawn.node (gzip) with the package's loader
//   lib/node_modules/...     the data-set packages' files the engine reads
//   shaders/                 the WGSL sources (found by src/kernels/node/shader-files.ts one level up)
//   deb/                     the Vulkan loader (libvulkan1) as .deb, unpacked by run.sh when absent
//   bench/peers, scripts/golden  the PyTorch peers the benchmarks and the GPU check run
//   *.json                   the shipped configs
// The whole folder must stay under 60 MiB (the GPU machine takes 64 MiB of files along). The first
// run.sh unpacks node and dawn.node beside their .gz (about 115 MiB more) and says so.
import { build } from 'esbuild';
import { register } from 'tsx/esm/api';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  createReadStream,
  createWriteStream,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  existsSync,
  chmodSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIMIT = 60 * 2 ** 20;
const args = process.argv.slice(2);
const outArg = args.indexOf('--out');
const OUT = resolve(outArg >= 0 ? args[outArg + 1] : join(ROOT, 'dist', 'webgpu-moe-linux-x64'));
const noDeb = args.includes('--no-vulkan-deb');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`bundle: builds for linux-x64 only (this is ${process.platform}-${process.arch})`);
  process.exit(2);
}

async function gzipTo(src, dst) {
  await pipeline(createReadStream(src), createGzip({ level: 9 }), createWriteStream(dst));
}

function sizeOf(p) {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((a, n) => a + sizeOf(join(p, n)), 0) : s.size;
}

rmSync(OUT, { recursive: true, force: true });
mkdirSync(join(OUT, 'lib'), { recursive: true });

// 1. The engine: one ESM bundle per entry, shared code in chunks. Dawn's package stays a real
// package (it locates dawn.node beside itself); tfjs is a repository-only peer. The dashboard page
// is built now and src/ui/bundle.ts replaced by its result: esbuild itself (a CommonJS package
// that finds its native binary through __filename) cannot run from inside an ESM bundle.
register();
const { buildPage } = await import(join(ROOT, 'src', 'ui', 'bundle.ts'));
const page = await buildPage();
if (!page.js || !page.html) throw new Error('bundle: the dashboard page built empty');
const prebuiltPage = {
  name: 'prebuilt-dashboard-page',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]ui[\\/]bundle\.ts$/ }, () => ({
      contents: `// Built at bundle time by scripts/bundle/bundle.mjs.\nconst assets = ${JSON.stringify(page)};\nexport function pageAssets() { return Promise.resolve(assets); }\n`,
      loader: 'js',
    }));
  },
};
const COMMANDS = ['train', 'forecast', 'export', 'dashboard', 'diagnose'];
const result = await build({
  entryPoints: [...COMMANDS, 'bench', 'gpu-check'].map((e) => join(ROOT, 'scripts', 'bundle', 'entries', `${e}.ts`)),
  outdir: join(OUT, 'lib'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['webgpu', '@tensorflow/*'],
  minify: true,
  legalComments: 'none',
  plugins: [prebuiltPage],
  metafile: true,
  // CommonJS dependencies bundled into ESM call require() for Node built-ins.
  banner: { js: "import { createRequire as __wmoeRequire } from 'node:module'; const require = __wmoeRequire(import.meta.url);" },
  logLevel: 'warning',
});
// Build-time tools must not end up in the bundle: neither runs without its node_modules.
const buildTools = Object.keys(result.metafile.inputs).filter((f) => /node_modules\/(esbuild|tsx|@esbuild)\//.test(f));
if (buildTools.length) throw new Error(`bundle: build-time packages were bundled: ${buildTools.join(', ')}`);

// 2. Dawn: the loader and the linux-x64 binary, compressed.
const require = createRequire(join(ROOT, 'package.json'));
const webgpuDir = dirname(require.resolve('webgpu/package.json'));
const webgpuOut = join(OUT, 'lib', 'node_modules', 'webgpu');
mkdirSync(join(webgpuOut, 'dist', 'linux-x64'), { recursive: true });
for (const f of ['package.json', 'index.js', 'LICENSE.md']) copyFileSync(join(webgpuDir, f), join(webgpuOut, f));
await gzipTo(join(webgpuDir, 'dist', 'linux-x64', 'dawn.node'), join(webgpuOut, 'dist', 'linux-x64', 'dawn.node.gz'));

// 3. The data-set packages: package.json, the entry require.resolve finds, and the files read.
const { DATASETS, packageDir } = await import(join(ROOT, 'src', 'train', 'data', 'datasets.ts'));
const files = new Map();
for (const spec of Object.values(DATASETS)) {
  const dir = packageDir(spec.pkg);
  if (!files.has(spec.pkg))
    files.set(spec.pkg, {
      dir,
      list: new Set(['package.json', relative(dir, require.resolve(spec.pkg)), ...['LICENSE', 'NOTICE'].filter((n) => existsSync(join(dir, n)))]),
    });
  files.get(spec.pkg).list.add(spec.file);
}
for (const [pkg, { dir, list }] of files) {
  for (const f of list) {
    const dst = join(OUT, 'lib', 'node_modules', pkg, f);
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(join(dir, f), dst);
  }
}

// What the first run.sh adds to the folder (it says so then).
const unpacked = statSync(process.execPath).size + statSync(join(webgpuDir, 'dist', 'linux-x64', 'dawn.node')).size;

// 4. Node itself.
mkdirSync(join(OUT, 'bin'), { recursive: true });
await gzipTo(process.execPath, join(OUT, 'bin', 'node.gz'));

// 5. Shaders, configs, the PyTorch peers and the reference model they import.
cpSync(join(ROOT, 'shaders'), join(OUT, 'shaders'), { recursive: true, filter: (p) => !p.includes(`${join('shaders', 'test')}`) });
for (const f of readdirSync(ROOT).filter((n) => n.endsWith('.json') && !n.startsWith('package') && !n.startsWith('tsconfig')))
  copyFileSync(join(ROOT, f), join(OUT, f));
mkdirSync(join(OUT, 'bench', 'peers'), { recursive: true });
for (const f of readdirSync(join(ROOT, 'bench', 'peers')).filter((n) => n.endsWith('.py')))
  copyFileSync(join(ROOT, 'bench', 'peers', f), join(OUT, 'bench', 'peers', f));
mkdirSync(join(OUT, 'scripts', 'golden'), { recursive: true });
copyFileSync(join(ROOT, 'scripts', 'golden', 'timemoe_ref.py'), join(OUT, 'scripts', 'golden', 'timemoe_ref.py'));

// 6. The Vulkan loader as .deb (the GPU machine may have the driver's ICD but no loader).
if (!noDeb) {
  mkdirSync(join(OUT, 'deb'), { recursive: true });
  try {
    execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: join(OUT, 'deb'), stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    console.error(
      `bundle: could not download libvulkan1 (${String(e.stderr ?? e.message)
        .trim()
        .split('\n')
        .pop()}); run.sh will need the system's Vulkan loader`,
    );
  }
}

copyFileSync(join(ROOT, 'scripts', 'bundle', 'run.sh'), join(OUT, 'run.sh'));
chmodSync(join(OUT, 'run.sh'), 0o755);
writeFileSync(
  join(OUT, 'VERSION'),
  `webgpu-moe ${JSON.parse((await import('node:fs')).readFileSync(join(ROOT, 'package.json'), 'utf8')).version}, node ${process.version}, built ${new Date().toISOString()}\n`,
);

const total = sizeOf(OUT);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
for (const p of ['bin', 'lib', 'shaders', 'deb'].filter((p) => existsSync(join(OUT, p)))) console.error(`  ${p}/ ${mib(sizeOf(join(OUT, p)))}`);
console.error(`bundle: ${OUT} (${mib(total)}; the first run.sh unpacks node and dawn.node beside their .gz: ${mib(total + unpacked)} after it)`);
if (total > LIMIT) {
  console.error(`bundle: ${mib(total)} exceeds the ${mib(LIMIT)} a GPU machine takes along`);
  process.exit(1);
}
