/**
 * The layout's rules, checked on the source text: no import cycles (type imports count: they
 * couple modules the same way), data flows one way between the layers of src/, nothing outside
 * src/kernels reaches the device, and the engine's core uses no Node built-in, so the browser page
 * (src/web/) bundles the same code train.js runs (docs/DESIGN.md, "Layout"; docs/BROWSER.md).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a module (static `import ... from`, `export ... from`, and `import('...')`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*'(\.[^']+)'/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)) out.push(m[1]!);
  return out.map((s) => relative(ROOT, resolve(dirname(file), s)));
}

const graph = new Map(files(SRC).map((f) => [relative(ROOT, f), importsOf(f)]));

function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') found.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

/** Layers of src/, lowest first: a module may import its own layer or lower ones only. */
const LAYERS = ['util', 'kernels', 'autograd', 'model', 'optim', 'report', 'diagnose', 'ui', 'train', 'forecast', 'web'];
const layerOf = (f: string) => LAYERS.indexOf(f.split('/')[1]!);

describe('source layout', () => {
  it('reads the whole of src', () => {
    expect(graph.size).toBeGreaterThan(60);
    expect(graph.get('src/kernels/runtime.ts')).toContain('src/kernels/tensor.ts');
  });

  it('has no import cycle', () => {
    expect(cycles().map((c) => c.join(' -> '))).toEqual([]);
  });

  it('imports flow one way: kernels <- autograd <- model <- optim <- train', () => {
    const upward: string[] = [];
    for (const [f, deps] of graph) {
      for (const d of deps) if (d.startsWith('src/') && layerOf(d) > layerOf(f)) upward.push(`${f} -> ${d}`);
    }
    expect(upward).toEqual([]);
  });

  it('nothing outside src/kernels reaches a recorder, a GPUDevice, a buffer pool or adapter strings', () => {
    const offenders: string[] = [];
    const forbidden = [
      /\.recorder\b/,
      /\bGPUDevice\b/,
      /\bGPUBuffer\b/,
      /\.pool\./,
      /\.device\.(limits|queue|features)/,
      /adapter\.(backend|device|description)\b[^;\n]*\.(includes|test|match)\(/,
      /\/[^/\n]*(llvmpipe|lavapipe|swiftshader)[^/\n]*\/i?\.test\(/,
    ];
    for (const f of graph.keys()) {
      if (f.startsWith('src/kernels/')) continue;
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const re of forbidden) if (re.test(text)) offenders.push(`${f}: ${re}`);
    }
    expect(offenders).toEqual([]);
  });

  it('the core uses no Node built-in (node: imports, process, Buffer, require): Node lives at the edges, in node/ folders', () => {
    const offenders: string[] = [];
    for (const f of graph.keys()) {
      if (!isCore(f)) continue;
      const code = codeOf(f);
      for (const re of NODE_ONLY) if (re.test(code)) offenders.push(`${f}: ${re}`);
      for (const d of graph.get(f) ?? []) if (NODE_EDGE.test(d)) offenders.push(`${f} imports the Node edge ${d}`);
    }
    expect(offenders).toEqual([]);
    // The check sees what it must: a core file that reads a file would be caught.
    expect(NODE_ONLY.some((re) => re.test("import { readFileSync } from 'node:fs';"))).toBe(true);
    expect(NODE_ONLY.some((re) => re.test('const k = process.env.X;'))).toBe(true);
    expect(NODE_ONLY.some((re) => re.test('Buffer.from(s)'))).toBe(true);
    expect(NODE_ONLY.some((re) => re.test('new ArrayBuffer(8); GPUBuffer; SharedArrayBuffer'))).toBe(false);
    expect([...graph.keys()].filter(isCore).length).toBeGreaterThan(80);
  });

  it('everything the browser page bundles is free of Node built-ins too (its import closure)', () => {
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const d of valueImportsOf(f)) visit(d);
    };
    visit('src/web/main.ts');
    const offenders = [...seen].flatMap((f) => (graph.has(f) ? NODE_ONLY.filter((re) => re.test(codeOf(f))).map((re) => `${f}: ${re}`) : [`${f}: not found`]));
    expect(offenders).toEqual([]);
    // The page bundles the step, the planner and the dashboard's view (their own tests cover them).
    for (const f of ['src/train/step/trainer.ts', 'src/train/plan/planner.ts', 'src/ui/page/view.ts', 'src/kernels/runtime.ts']) expect(seen).toContain(f);
  });
});

/**
 * The engine's core (docs/BROWSER.md): what a training step, its data windows, its config and its
 * plan need. A `node/` folder inside it holds the Node edge of that layer (Dawn, files, threads).
 */
const CORE_DIRS = ['src/kernels/', 'src/autograd/', 'src/model/', 'src/optim/', 'src/train/step/'];
const CORE_FILES = [
  'src/train/config.ts',
  ...['config', 'clean', 'split', 'windows', 'series', 'errors', 'synthetic', 'prepare', 'csv-rows'].map((f) => `src/train/data/${f}.ts`),
];
const NODE_EDGE = /\/node\//;
const isCore = (f: string) => !NODE_EDGE.test(f) && (CORE_DIRS.some((d) => f.startsWith(d)) || CORE_FILES.includes(f));

/** Node-only things in code (comments stripped first: they may name them). */
const NODE_ONLY = [/\bfrom\s*['"]node:/, /\bimport\(\s*['"]node:/, /\brequire\(/, /\bprocess\.[a-zA-Z]/, /(?<![\w.])Buffer\b/, /\b__dirname\b/];

/**
 * The .ts modules a bundle of `f` contains: its imports less the type-only ones (`import type`,
 * every name `type`-marked), which esbuild erases.
 */
function valueImportsOf(f: string): string[] {
  const text = readFileSync(join(ROOT, f), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(import|export)\b([^'";]*?)from\s*'(\.[^']+\.ts)'/g)) {
    const clause = m[2]!.trim();
    const names = /\{([^}]*)\}/.exec(clause)?.[1];
    const typeOnly =
      /^type\b/.test(clause) ||
      (names !== undefined &&
        !/^[\w$]+\s*,/.test(clause) &&
        names
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean)
          .every((n) => n.startsWith('type ')));
    if (!typeOnly) out.push(relative(ROOT, resolve(dirname(join(ROOT, f)), m[3]!)));
  }
  for (const m of text.matchAll(/import\(\s*'(\.[^']+\.ts)'\s*\)/g)) out.push(relative(ROOT, resolve(dirname(join(ROOT, f)), m[1]!)));
  return out;
}

function codeOf(f: string): string {
  return readFileSync(join(ROOT, f), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/[^\n]*/g, '$1');
}
