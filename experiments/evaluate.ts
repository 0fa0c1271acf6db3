/**
 * What a scenario's report judges besides its own outcome: the harm (does the failure arm do worse
 * than the fix at what a user cares about, seed by seed) and the diagnosis (does `node diagnose.js`
 * name each failure arm's finding, and none of those kinds on the fix arm). Both are computed from
 * the runs' files when the report is written, like every other number in it.
 */
import { loadRunFolder } from '../src/diagnose/cli.ts';
import { diagnoseRun } from '../src/diagnose/diagnoser.ts';
import type { Finding, FindingKind } from '../src/diagnose/types.ts';
import { fmtNum } from '../src/report/report.ts';
import type { HarmArm, HarmComparison, HarmMetric, HarmResult, Mode, RunData, Scenario, ShownRun } from './scenarios.ts';

const f = fmtNum;

// ---------------------------------------------------------------------------------------------
// Harm

/** How much worse `a` is than `b` (positive: worse); a NaN (a dead run) is worse than any number. */
function worseBy(metric: HarmMetric, a: number, b: number): number {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0;
  if (Number.isNaN(a)) return Infinity;
  if (Number.isNaN(b)) return -Infinity;
  if (a === b) return 0; // also Infinity vs Infinity: neither reached the target
  return metric.better === 'lower' ? a - b : b - a;
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const spread = (xs: readonly number[]) => (xs.some((x) => !Number.isFinite(x)) ? NaN : Math.max(...xs) - Math.min(...xs));

/** Two-sided 95% critical values of Student's t, for 1..10 degrees of freedom (then the normal's 1.96). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
const tCritical = (df: number) => (df < 1 ? NaN : (T95[df - 1] ?? 1.96));

/** Paired t statistic of the gaps: their mean over its standard error. */
function pairedT(gaps: readonly number[]): number {
  if (gaps.length < 2 || gaps.some((g) => !Number.isFinite(g))) return NaN;
  const m = mean(gaps);
  const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - m) ** 2, 0) / (gaps.length - 1));
  return sd > 0 ? m / (sd / Math.sqrt(gaps.length)) : m > 0 ? Infinity : NaN;
}

/**
 * Every harm metric of the scenario on every arm and seed, and each failure arm against the fix arm
 * seed by seed. The arms of one seed share the data order and every initial weight but the one the
 * scenario changes, so the comparison is paired: harm is *shown* when the failure arm is worse in
 * every seed and, with two seeds or more, a paired t-test says the gap is not zero (95%, two-sided).
 * A failure that never reaches a target or dies (an infinite gap) in every seed is shown outright.
 * With one seed (the fast versions) there is no test: worse is all it can say, and the report says so.
 */
export function measureHarm(scenario: Scenario<unknown>, runs: readonly RunData[], mode: Mode): HarmResult {
  const seeds = [...scenario.seeds[mode]];
  const fix = scenario.variants.find((v) => v.role === 'fix');
  const value = (slug: string, seed: number, metric: HarmMetric): number => {
    const r = runs.find((x) => x.variant.slug === slug && x.seed === seed);
    if (!r) throw new Error(`${scenario.name}: no run of ${slug} with seed ${seed}`);
    return metric.of(r.metrics);
  };
  return {
    seeds,
    metrics: scenario.harm.map((metric) => {
      const arms = scenario.variants.map((v) => {
        const values = seeds.map((seed) => value(v.slug, seed, metric));
        return { slug: v.slug, label: v.label, role: v.role, values, mean: mean(values), spread: spread(values) };
      });
      const fixArm = fix ? arms.find((a) => a.slug === fix.slug) : undefined;
      const comparisons: HarmComparison[] = fixArm
        ? arms
            .filter((a) => a.role === 'failure')
            .map((a) => {
              const gaps = a.values.map((v, i) => worseBy(metric, v, fixArm.values[i]!));
              const worseIn = gaps.filter((g) => g > 0).length;
              const gap = mean(gaps);
              const t = pairedT(gaps);
              const crit = tCritical(seeds.length - 1);
              const everyWorse = worseIn === seeds.length;
              const shown = everyWorse && (seeds.length === 1 || gaps.every((g) => g === Infinity) || t > crit);
              return {
                slug: a.slug,
                label: a.label,
                worseIn,
                seeds: seeds.length,
                gaps,
                gap,
                relGap: gap / Math.abs(fixArm.mean),
                t,
                tCritical: crit,
                seedSpread: Math.max(a.spread, fixArm.spread),
                shown,
              };
            })
        : [];
      return { metric, arms, comparisons };
    }),
  };
}

const fmtValue = (metric: HarmMetric, v: number) => (v === Infinity && metric.never ? metric.never : (metric.fmt ?? f)(v));

/** One sentence per failure arm and metric: worse in how many seeds, by how much, and the test. */
export function harmSentences(h: HarmResult): string[] {
  return h.metrics.flatMap(({ metric, comparisons }) =>
    comparisons.map((c) => {
      const finite = c.gaps.every((g) => Number.isFinite(g));
      const gaps = finite
        ? `gap${c.seeds === 1 ? '' : 's'} ${c.gaps.map((g) => f(g)).join(', ')}${c.seeds > 1 ? `, mean ${f(c.gap)}` : ''}${Number.isFinite(c.relGap) ? ` (${f(100 * c.relGap)}% of the fix's value)` : ''}`
        : `${metric.never ? 'the failure arm never got there' : 'the failure arm is not a number'} in ${c.gaps.filter((g) => g === Infinity).length} of ${c.seeds}`;
      const test =
        c.seeds === 1
          ? 'one seed, so no test'
          : Number.isFinite(c.t)
            ? `paired t = ${f(c.t)} against ${f(c.tCritical)} (95%, ${c.seeds - 1} degrees of freedom); the seed alone moves an arm by up to ${f(c.seedSpread)}`
            : 'no t-test (an infinite or constant gap)';
      return `${c.label}, ${metric.label}: worse than the fix in ${c.worseIn} of ${c.seeds} seed${c.seeds === 1 ? '' : 's'}; ${gaps}; ${test} → ${c.shown ? '**harm shown**' : '**no harm shown**'}.`;
    }),
  );
}

export function harmMarkdown(h: HarmResult): string {
  const md: string[] = [
    h.seeds.length > 1
      ? `Each arm with seeds ${h.seeds.join(', ')}; the charts and summary below show seed ${h.seeds[0]}. The arms of one seed share the data order and every initial weight but the one the scenario changes, so each failure arm is compared with the fix seed by seed: harm is **shown** when it is worse in every seed and a paired t-test of the gaps rejects "no difference" at 95% (a failure that never reaches the target, or dies, in every seed is shown outright).`
      : `One seed (${h.seeds[0]}): harm is **shown** when the failure arm is worse than the fix; with one seed there is no test, so read it as a direction, not a size (the full version runs more seeds).`,
    '',
  ];
  for (const { metric, arms } of h.metrics) {
    md.push(`**${metric.label}** (${metric.better} is better)`, '');
    const many = h.seeds.length > 1;
    md.push(`| arm | ${h.seeds.map((s) => `seed ${s}`).join(' | ')} |${many ? ' mean | spread over seeds |' : ''}`);
    md.push(`|---|${h.seeds.map(() => '---:').join('|')}|${many ? '---:|---:|' : ''}`);
    for (const a of arms)
      md.push(
        `| ${a.label} | ${a.values.map((v) => fmtValue(metric, v)).join(' | ')} |${many ? ` ${fmtValue(metric, a.mean)} | ${Number.isFinite(a.spread) ? f(a.spread) : '—'} |` : ''}`,
      );
    md.push('');
  }
  md.push(...harmSentences(h).map((s) => `- ${s}`), '');
  return md.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Findings

export interface ArmFindings {
  /** The report's label for the run (a derived view has its own). */
  label: string;
  seed: number | null;
  dir: string;
  /** Finding ids, errors first (`kind` or `kind@layer<N>`). */
  ids: string[];
  kinds: FindingKind[];
  findings: Finding[];
  notes: number;
  /** Kinds the diagnosis must name on this run (a failure), and kinds it must not (a fix: the failures' kinds). */
  expected: readonly FindingKind[];
  forbidden: readonly FindingKind[];
  missing: FindingKind[];
  unexpected: FindingKind[];
  ok: boolean;
}

/** Run the diagnosis (the same code as `node diagnose.js DIR`) on each run and check it against what the scenario expects. */
export function diagnoseArms(scenario: Scenario<unknown>, shown: readonly ShownRun[], extra: readonly RunData[], mode: Mode): ArmFindings[] {
  const failureKinds = [...new Set(scenario.variants.filter((v) => v.role === 'failure').flatMap((v) => v.findings[mode]))];
  const one = (label: string, dir: string, seed: number | null, role: 'failure' | 'fix', expected: readonly FindingKind[]): ArmFindings => {
    const run = loadRunFolder(dir);
    const d = diagnoseRun(run.header, run.records);
    const kinds = [...new Set(d.findings.map((x) => x.kind))];
    const forbidden = role === 'fix' ? failureKinds : [];
    const missing = expected.filter((k) => !kinds.includes(k));
    const unexpected = kinds.filter((k) => forbidden.includes(k));
    return {
      label,
      seed,
      dir,
      ids: d.findings.map((x) => x.id),
      kinds,
      findings: d.findings,
      notes: d.notes.length,
      expected,
      forbidden,
      missing,
      unexpected,
      ok: missing.length === 0 && unexpected.length === 0,
    };
  };
  return [
    ...shown.map((s) => one(s.label, s.dir, s.seed ?? null, s.role, s.findings)),
    ...extra.map((r) => one(r.variant.label, r.dir, r.seed, r.variant.role, r.variant.findings[mode])),
  ];
}

function findingCell(a: ArmFindings): string {
  const list = a.findings.map((x) => `\`${x.id}\` (${x.severity}, from step ${x.firstStep})`);
  const notes = a.notes ? `${a.notes} note${a.notes === 1 ? '' : 's'}` : '';
  return list.length ? [...list, ...(notes ? [notes] : [])].join(', ') : `none${notes ? ` (${notes})` : ''}`;
}

function expectCell(a: ArmFindings): string {
  const want = a.expected.length ? `names ${a.expected.map((k) => `\`${k}\``).join(', ')}` : '';
  const not = a.forbidden.length ? `none of ${a.forbidden.map((k) => `\`${k}\``).join(', ')}` : '';
  const verdict = a.ok ? 'yes' : `**no**: ${[...a.missing.map((k) => `\`${k}\` missing`), ...a.unexpected.map((k) => `\`${k}\` present`)].join(', ')}`;
  return `${[want, not].filter(Boolean).join('; ') || '—'}: ${verdict}`;
}

export function findingsMarkdown(arms: readonly ArmFindings[]): string {
  const seeds = arms.some((a) => a.seed !== null);
  return [
    'What `node diagnose.js <run folder>` (src/diagnose, docs/FINDINGS.md) reports on each run; each failure arm must get its finding and the fix arm none of those kinds.',
    '',
    `| run |${seeds ? ' seed |' : ''} findings | as expected |`,
    `|---|${seeds ? '---:|' : ''}---|---|`,
    ...arms.map((a) => `| ${a.label} |${seeds ? ` ${a.seed ?? '—'} |` : ''} ${findingCell(a)} | ${expectCell(a)} |`),
    '',
  ].join('\n');
}
