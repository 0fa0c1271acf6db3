/**
 * The documentation's checkable claims, checked (no GPU, about a second): README.md and docs/*.md.
 *
 * - every repository path they name (in prose, backticks, code blocks or links) exists;
 * - the README's test command is what .ci/run runs, its quick-start config exists and is valid, and
 *   its console output is the committed one;
 * - every exit-code table equals the engine's EXIT;
 * - docs/CONFIG.md documents exactly the config schema's keys, with the schema's defaults, and
 *   exactly the CLI's flags;
 * - every number in the README's prose is traced in docs/README-NUMBERS.md;
 * - no reference to an issue tracker readers cannot see.
 *
 * The code these checks read is named in the constants below, and only there: when a file moves
 * (the src/train rooms), change the constant. A missing path is reported with the document and line
 * that names it.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Exports `EXIT`, the exit-code table of train.js. */
const EXIT_CODES_MODULE = 'src/train/exit-codes.ts';
/** Exports `TrainConfigSchema` (zod) and `parseConfig`. */
const CONFIG_MODULE = 'src/train/config.ts';
/** Declares train.js's flags with commander's `.option(...)`. */
const CLI_MODULE = 'src/train/cli/train.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const read = (rel: string): string => readFileSync(join(ROOT, rel), 'utf8');

/** Paths the docs name on purpose although they do not exist yet, with the reason. */
const NOT_YET: Record<string, string> = {
  'bench/results/gpu/': 'written by bench/gpu/check.sh on a GPU machine; no GPU has been measured yet',
};
/** Bare `*.json` names that are files inside run, checkpoint or Hugging Face folders, not root configs. */
const FOLDER_FILES = new Set([
  'model.safetensors.index.json',
  'config.json',
  'state.json',
  'header.json',
  'evaluation.json',
  'profile.json',
  'expected.json',
  'export-check.json',
]);

// ---------------------------------------------------------------------------------------------
// Markdown helpers

interface Line {
  doc: string;
  n: number;
  text: string;
  fenced: boolean;
}

function lines(doc: string): Line[] {
  let fenced = false;
  return read(doc)
    .split('\n')
    .map((text, i) => {
      const fence = /^\s*```/.test(text);
      if (fence) fenced = !fenced;
      return { doc, n: i + 1, text, fenced: fenced || fence };
    });
}

/** Fenced code blocks of a document: their info string, first line number and lines. */
function fences(doc: string): { info: string; line: number; body: string[] }[] {
  const out: { info: string; line: number; body: string[] }[] = [];
  let cur: { info: string; line: number; body: string[] } | null = null;
  read(doc)
    .split('\n')
    .forEach((text, i) => {
      const m = /^\s*```(.*)$/.exec(text);
      if (m && !cur) cur = { info: m[1]!.trim(), line: i + 1, body: [] };
      else if (m && cur) {
        out.push(cur);
        cur = null;
      } else if (cur) cur.body.push(text);
    });
  return out;
}

/** The section of a document under a `## heading` (up to the next heading of that level). */
function section(doc: string, heading: string): string {
  const text = read(doc);
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`${doc} has no "## ${heading}" section`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** Rows of every markdown table in a text: cells trimmed, separator rows left out; with the header. */
function tables(text: string): { header: string[]; rows: string[][] }[] {
  const out: { header: string[]; rows: string[][] }[] = [];
  let cur: { header: string[]; rows: string[][] } | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('|')) {
      cur = null;
      continue;
    }
    const cells = line
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (!cur) {
      cur = { header: cells, rows: [] };
      out.push(cur);
    } else if (!cells.every((c) => /^:?-+:?$/.test(c))) cur.rows.push(cells);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Repository files

const SKIP_DIRS = new Set(['node_modules', '.git', 'runs', 'dist', '__pycache__', '.vitest-cache']);
function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP_DIRS.has(e.name)) continue;
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out.push(`${rel}/`);
      walk(rel, out);
    } else out.push(rel);
  }
  return out;
}
const FILES = walk('');

/** Does a repository path exist? `<name>`, `{a,b}` and `*` are placeholders: some file must match. */
function exists(path: string): boolean {
  if (!/[<{*]/.test(path)) return existsSync(join(ROOT, path));
  const re = path
    .split(/(<[^>]*>|\{[^}]*\}|\*)/)
    .map((part) => {
      if (part.startsWith('<') || part === '*') return '[^/]+';
      if (part.startsWith('{')) return `(?:${part.slice(1, -1).split(',').map(escapeRe).join('|')})`;
      return escapeRe(part);
    })
    .join('');
  const rx = new RegExp(`^${re}/?$`);
  return FILES.some((f) => rx.test(f));
}
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const PREFIXES = ['src', 'test', 'bench', 'shaders', 'scripts', 'docs', 'experiments'];
const PATH_RE = new RegExp(`(?<![\\w./~$-])((?:${PREFIXES.join('|')})/[\\w.\\-/<>{}*,]*)`, 'g');

/** Repository paths a document names: prose, backticks and code blocks (repository-relative), and link targets (relative to the document). */
function namedPaths(doc: string): { line: number; path: string }[] {
  const out: { line: number; path: string }[] = [];
  for (const l of lines(doc)) {
    for (const m of l.text.matchAll(PATH_RE)) {
      let p = m[1]!.replace(/[.,]+$/, '');
      if (p.includes('{') && !p.includes('}')) p = p.slice(0, p.indexOf('{'));
      if (p.includes('<') && !p.includes('>')) continue;
      out.push({ line: l.n, path: p });
    }
    if (!l.fenced) {
      for (const m of l.text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.replace(/#.*$/, '');
        if (!target || /^[a-z]+:/i.test(target)) continue;
        out.push({ line: l.n, path: posix.normalize(posix.join(posix.dirname(doc), target)) });
      }
    }
    // Root configs: a bare `name.json` in backticks, or any `--config name.json`.
    const configs = [...l.text.matchAll(/--config\s+([\w.-]+\.json)\b/g)].map((m) => m[1]!);
    if (!l.fenced) configs.push(...[...l.text.matchAll(/`([\w.-]+\.json)`/g)].map((m) => m[1]!).filter((f) => !FOLDER_FILES.has(f)));
    for (const c of configs) out.push({ line: l.n, path: c });
  }
  return out;
}

describe('paths named in the docs exist', () => {
  it.each(DOCS)('%s', (doc) => {
    const missing = namedPaths(doc)
      .filter(({ path }) => !(path in NOT_YET) && !exists(path))
      .map(({ line, path }) => `${doc}:${line}: ${path}`);
    // Every missing path, with where it is named (src/train paths move when the rooms land).
    expect(missing, `paths named in ${doc} that do not exist`).toEqual([]);
  });

  it('the docs name paths at all (the extractor works)', () => {
    const all = DOCS.flatMap((d) => namedPaths(d).map((p) => p.path));
    expect(all.length).toBeGreaterThan(50);
    expect(all).toContain('docs/CONFIG.md');
  });
});

// ---------------------------------------------------------------------------------------------

describe("the README's quick start", () => {
  const quick = fences('README.md').filter((f) => section('README.md', 'Quick start').includes(f.body.join('\n')));
  const commands = quick.flatMap((f) => f.body.map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean));

  it('runs the tests with the command .ci/run runs, and package.json defines it', () => {
    expect(commands).toContain('npm test');
    const ci = read('.ci/run')
      .split('\n')
      .map((l) => l.trim());
    expect(ci, '.ci/run must run the README test command').toContain('npm test');
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.test).toBeTruthy();
  });

  it('trains a config that exists and is valid', async () => {
    const train = commands.map((c) => /^node train\.js --config (\S+)$/.exec(c)).find((m) => m);
    expect(train, 'a `node train.js --config <file>` line in the quick start').toBeTruthy();
    const file = train![1]!;
    expect(existsSync(join(ROOT, file)), file).toBe(true);
    const { parseConfig } = (await import(pathToFileURL(join(ROOT, CONFIG_MODULE)).href)) as { parseConfig: (raw: unknown, source?: string) => unknown };
    expect(() => parseConfig(JSON.parse(read(file)), file)).not.toThrow();
  });

  /** The README's console block of a run: its lines must all be in the committed console file, and in its order. */
  const expectConsoleBlock = (command: string, file: string) => {
    const console = read(file).split('\n');
    const block = fences('README.md').find((f) => f.body[0] === command && f.body.some((l) => l.startsWith('done:')));
    expect(block, `the README shows \`${command}\``).toBeTruthy();
    const shown = block!.body.filter((l) => l.trim());
    expect(
      shown.filter((l) => !console.includes(l)),
      `README console lines not in ${file}`,
    ).toEqual([]);
    const at = shown.map((l) => console.indexOf(l));
    expect(at, `README console lines out of ${file}'s order`).toEqual([...at].sort((a, b) => a - b));
  };

  it('shows the committed console output of the default run, line for line', () => {
    expectConsoleBlock(
      "$ node train.js --config small-moe.json   # f32 run, step lines every 100th step; Dawn's two limit warnings left out; the run folder was a temporary one, shown as runs/small-moe",
      'bench/results/default-run.console.txt',
    );
  });

  it('shows a real finding as the run printed it, line for line (the head-init failure)', () => {
    expectConsoleBlock(
      '$ node train.js --config small-moe-classifier.json --set model.init.headStd=1.0 --set schedule.steps=20',
      'bench/results/finding-head-std.console.txt',
    );
    const finding = read('bench/results/finding-head-std.console.txt');
    // What makes it a finding: the failure named, its fix and the experiment that reproduces it.
    expect(finding).toMatch(/\[diagnose\] ERROR {2}Initial loss far above ln C/);
    expect(finding).toContain('fix: --set model.init.headStd=0.02');
    expect(finding).toContain('reproduce: npm run experiment -- head-init');
  });
});

// ---------------------------------------------------------------------------------------------

describe('exit codes', () => {
  it('every `| code | meaning |` table lists exactly the codes of EXIT', async () => {
    const file = join(ROOT, EXIT_CODES_MODULE);
    expect(existsSync(file), `${EXIT_CODES_MODULE} not found: update EXIT_CODES_MODULE in test/docs/claims.test.ts`).toBe(true);
    const { EXIT } = (await import(pathToFileURL(file).href)) as { EXIT: Record<string, number> };
    const codes = [...new Set(Object.values(EXIT))].sort((a, b) => a - b);
    const found: string[] = [];
    for (const doc of DOCS) {
      for (const t of tables(read(doc))) {
        if (t.header[0] !== 'code' || t.header[1] !== 'meaning') continue;
        found.push(doc);
        const documented = t.rows.flatMap((r) => (r[0]!.match(/\d+/g) ?? []).map(Number)).sort((a, b) => a - b);
        expect(documented, `exit codes in ${doc}`).toEqual(codes);
      }
    }
    expect(found, 'an exit-code table in the docs').not.toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The config schema, walked through zod 4's definitions

type Def = { type: string; innerType?: Zod; shape?: Record<string, Zod>; options?: Zod[]; defaultValue?: unknown };
type Zod = { _zod: { def: Def } };

/** What a key's default cell must say: `required`, `unset`, `—` (an object with defaults inside) or its default as JSON. */
type Status = string;
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x,
  );

function schemaKeys(schema: Zod): Map<string, Set<Status>> {
  const keys = new Map<string, Set<Status>>();
  const visit = (s: Zod, path: string): void => {
    let status: Status = 'required';
    let d = s._zod.def;
    for (;;) {
      if (d.type === 'default') status = canonical(d.defaultValue);
      else if (d.type === 'prefault') status = '—';
      else if (d.type === 'optional') status = status === 'required' ? 'unset' : status;
      else if (d.type !== 'nullable') break;
      d = d.innerType!._zod.def;
    }
    if (path) {
      if (!keys.has(path)) keys.set(path, new Set());
      keys.get(path)!.add(status);
    }
    const objects = d.type === 'object' ? [d] : d.type === 'union' ? d.options!.map((o) => o._zod.def).filter((o) => o.type === 'object') : [];
    for (const o of objects) for (const [k, v] of Object.entries(o.shape!)) visit(v, path ? `${path}.${k}` : k);
  };
  visit(schema, '');
  return keys;
}

function documentedStatus(cell: string): Status[] | string {
  const out = new Set<Status>();
  if (/\brequired\b/.test(cell)) out.add('required');
  if (/\bunset\b/.test(cell)) out.add('unset');
  if (cell.trim() === '—') out.add('—');
  for (const m of cell.matchAll(/`([^`]+)`/g)) {
    try {
      out.add(canonical(JSON.parse(m[1]!)));
    } catch {
      return `default cell "${cell}": \`${m[1]}\` is not JSON`;
    }
  }
  return out.size ? [...out].sort() : `default cell "${cell}": say required, unset, — or the default as JSON in backticks`;
}

describe('docs/CONFIG.md and the config schema', () => {
  it('document the same keys with the same defaults', async () => {
    const file = join(ROOT, CONFIG_MODULE);
    expect(existsSync(file), `${CONFIG_MODULE} not found: update CONFIG_MODULE in test/docs/claims.test.ts`).toBe(true);
    const { TrainConfigSchema } = (await import(pathToFileURL(file).href)) as { TrainConfigSchema: Zod };
    const schema = schemaKeys(TrainConfigSchema);
    const sections = new Set([...schema.keys()].filter((k) => !k.includes('.')));
    // The sections themselves are headings; every key below them, and top-level scalars (seed), are rows.
    const wanted = [...schema.keys()].filter((k) => k.includes('.') || ![...schema.keys()].some((x) => x.startsWith(`${k}.`)));

    const rows = new Map<string, { default: string; meaning: string }>();
    const problems: string[] = [];
    for (const t of tables(read('docs/CONFIG.md'))) {
      if (t.header[0] !== 'key' || t.header[1] !== 'default') continue;
      for (const r of t.rows) {
        const m = /^`([A-Za-z][\w]*(?:\.[A-Za-z][\w]*)*)`$/.exec(r[0]!);
        if (!m) problems.push(`row "${r[0]}": the key cell must be one key in backticks`);
        else if (rows.has(m[1]!)) problems.push(`${m[1]}: documented twice`);
        else rows.set(m[1]!, { default: r[1] ?? '', meaning: r[2] ?? '' });
      }
    }
    for (const k of wanted) if (!rows.has(k)) problems.push(`${k}: in the schema, not in docs/CONFIG.md`);
    for (const [k, row] of rows) {
      if (!schema.has(k)) {
        problems.push(`${k}: in docs/CONFIG.md, not in the schema${sections.has(k.split('.')[0]!) ? '' : ' (no such section)'}`);
        continue;
      }
      if (!row.meaning) problems.push(`${k}: no meaning given`);
      const doc = documentedStatus(row.default);
      const want = [...schema.get(k)!].sort();
      if (typeof doc === 'string') problems.push(`${k}: ${doc}`);
      else if (canonical(doc) !== canonical(want)) problems.push(`${k}: docs/CONFIG.md says ${doc.join(', ')}; the schema: ${want.join(', ')}`);
    }
    expect(problems).toEqual([]);
  });

  it("document exactly train.js's flags", () => {
    const source = read(CLI_MODULE);
    const declared = [...source.matchAll(/\.option\(\s*'(?:-\w, )?(--[a-z][\w-]*)/g)].map((m) => m[1]!).sort();
    expect(declared.length, `no .option('--flag') found in ${CLI_MODULE}: update CLI_MODULE`).toBeGreaterThan(5);
    const flagTable = tables(read('docs/CONFIG.md')).find((t) => t.header[0] === 'flag');
    expect(flagTable, 'a `| flag | ... |` table in docs/CONFIG.md').toBeTruthy();
    const documented = flagTable!.rows.flatMap((r) => [...r[0]!.matchAll(/`(--[a-z][\w-]*)/g)].map((m) => m[1]!)).sort();
    expect(documented).toEqual(declared);
  });

  it('every config file the docs name at the root is valid', async () => {
    const { parseConfig } = (await import(pathToFileURL(join(ROOT, CONFIG_MODULE)).href)) as { parseConfig: (raw: unknown, source?: string) => unknown };
    const configs = new Set(
      DOCS.flatMap((d) => namedPaths(d).map((p) => p.path)).filter(
        (p) => /^[\w-][\w.-]*\.json$/.test(p) && existsSync(join(ROOT, p)) && !['package.json', 'tsconfig.json', 'package-lock.json'].includes(p),
      ),
    );
    expect(configs.size).toBeGreaterThan(0);
    for (const c of configs) expect(() => parseConfig(JSON.parse(read(c)), c), c).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * Numbers in prose: inline code, code blocks, link targets and HTML comments left out; a number
 * glued to a letter or after a hyphen (f16, 50M, 100th, top-2, rtx-3090) is a name, not a claim;
 * integers below 10 are counts too common to trace.
 */
function proseNumbers(text: string): string[] {
  const prose = text
    .replace(/```[\s\S]*?```/g, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/`[^`]*`/g, '')
    .replace(/\]\([^)]*\)/g, ']');
  return [...prose.matchAll(/(?<![\w.,§/-])\d(?:[\d.,]*\d)?(?!\w|[.,]\d)/g)].map((m) => m[0]).filter((n) => !/^\d$/.test(n));
}

describe('README numbers', () => {
  it('each number in the README prose is traced in docs/README-NUMBERS.md', () => {
    const traced = new Set(proseNumbers(read('docs/README-NUMBERS.md').replace(/`/g, ' ')));
    const untraced = lines('README.md')
      .filter((l) => !l.fenced)
      .flatMap((l) =>
        proseNumbers(l.text)
          .filter((n) => !traced.has(n))
          .map((n) => `README.md:${l.n}: ${n}`),
      );
    // Code blocks are exempt only where they are checked otherwise: the console block above.
    expect(untraced).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('no issue-tracker references', () => {
  it.each(DOCS)('%s', (doc) => {
    const hits = lines(doc)
      .filter((l) => /\bissues? \d+|\bissue items?\b|(?<![\w&/#])#\d+\b|`issues /i.test(l.text))
      .map((l) => `${doc}:${l.n}: ${l.text.trim().slice(0, 120)}`);
    expect(hits, 'readers cannot see the issue tracker: say what the reference meant instead').toEqual([]);
  });
});
