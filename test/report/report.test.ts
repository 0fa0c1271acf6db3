import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtNum, lossChart, standardCharts, summarize, writeComparisonReport, type ChartSpec } from '../../src/report/report.ts';
import { readMetrics } from '../../src/report/metrics-file.ts';
import { xmlProblems } from './xml-check.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'report');
const runs = [
  { label: 'Collapse (router std 1.0)', dir: join(fixtures, 'collapse') },
  { label: 'Fix (router std 0.01)', dir: join(fixtures, 'fixed') },
];

describe('summary', () => {
  it('reports key numbers, with NaN spelled out and the first bad tensor named', () => {
    const rows = new Map(summarize(readMetrics(join(fixtures, 'collapse', 'metrics.jsonl'))));
    expect(rows.get('train loss, step 1')).toBe('3.72');
    expect(rows.get('grad norm pre-clip, step 1')).toBe('180');
    expect(rows.get('skipped steps')).toBe('1 (first at step 5)');
    expect(rows.get('steps with non-finite loss')).toBe('1 (first at step 5)');
    expect(rows.get('first non-finite tensor')).toBe('step 5: model.layers.1.ffn_out (layer 1), 12 values');
    expect(rows.get('max grad norm pre-clip')).toBe('NaN');
    expect(rows.get('max expert share, layer 1 (last; balanced 0.25)')).toBe('0.97');
    expect(rows.get('valid loss, step 8 (last)')).toBe('3.3');
    const fixed = new Map(summarize(readMetrics(join(fixtures, 'fixed', 'metrics.jsonl'))));
    expect(fixed.get('first non-finite tensor')).toBe('none');
    expect(fixed.get('skipped steps')).toBe('0');
  });

  it('fmtNum never turns a non-finite value into 0', () => {
    expect(fmtNum(NaN)).toBe('NaN');
    expect(fmtNum(-Infinity)).toBe('-Infinity');
    expect(fmtNum(undefined)).toBe('—');
    expect(fmtNum(0.000123)).toBe('1.23e-4');
    expect(fmtNum(12.34567)).toBe('12.35');
  });
});

describe('writeComparisonReport', () => {
  it('writes README.md and one well-formed SVG per chart and run, referenced by relative name', () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'report-')), 'router-collapse');
    const r = writeComparisonReport({ outDir, title: 'Router collapse', description: 'Router logits too large | fixed by a small std.', runs });
    const md = readFileSync(r.readme, 'utf8');
    const metrics = runs.map((x) => readMetrics(join(x.dir, 'metrics.jsonl')));
    const specs = standardCharts(metrics);
    expect(specs.map((s) => s.file)).toEqual([
      'loss',
      'grad-norm',
      'clipped-fraction',
      'max-expert-share',
      'router-entropy',
      'aux-loss',
      'expert-load-layer0',
      'expert-load-layer1',
    ]);
    expect(r.svgs).toHaveLength(specs.length * 2);

    // Every image in the README exists in outDir, and every SVG written is in the README.
    const images = [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
    expect(images.sort()).toEqual(
      readdirSync(outDir)
        .filter((f) => f.endsWith('.svg'))
        .sort(),
    );
    for (const f of images) {
      expect(existsSync(join(outDir, f))).toBe(true);
      expect(xmlProblems(readFileSync(join(outDir, f), 'utf8'))).toEqual([]);
    }
    expect(images).toContain('loss-collapse-router-std-1-0.svg');
    expect(images).toContain('loss-fix-router-std-0-01.svg');

    // Title, escaped description, summary table with a column per run, charts side by side.
    expect(md.startsWith('# Router collapse\n')).toBe(true);
    expect(md).toContain('Router logits too large | fixed');
    expect(md).toContain('| | Collapse (router std 1.0) | Fix (router std 0.01) |');
    expect(md).toMatch(/\| first non-finite tensor \| step 5: model\.layers\.1\.ffn_out \(layer 1\), 12 values \| none \|/);
    expect(md).toMatch(/\| !\[Loss, Collapse[^\]]*\]\(loss-collapse-router-std-1-0\.svg\) \| !\[Loss, Fix[^\]]*\]\(loss-fix-router-std-0-01\.svg\) \|/);
    expect(md).toContain('../../'); // run paths are relative to the report

    // The NaN step of the failing run is visible in its charts, not drawn as 0.
    const loss = readFileSync(join(outDir, 'loss-collapse-router-std-1-0.svg'), 'utf8');
    expect(loss).toMatch(/class="nonfinite-marker" data-series="train loss" data-x="5" data-value="NaN"/);
    const grad = readFileSync(join(outDir, 'grad-norm-collapse-router-std-1-0.svg'), 'utf8');
    expect(grad).toContain('class="nonfinite-band"');
    expect(readFileSync(join(outDir, 'loss-fix-router-std-0-01.svg'), 'utf8')).not.toContain('nonfinite');
  });

  it('puts both runs of a chart on the same axes', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'report-'));
    writeComparisonReport({ outDir, title: 't', description: 'd', runs, charts: [lossChart] });
    const yTicks = (f: string) => {
      const svg = readFileSync(join(outDir, f), 'utf8');
      return svg.match(/<g class="y-ticks"[\s\S]*?<\/g>/)![0];
    };
    expect(yTicks('loss-collapse-router-std-1-0.svg')).toBe(yTicks('loss-fix-router-std-0-01.svg'));
  });

  it('accepts custom chart specs and summary rows, and dedupes run slugs', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'report-'));
    const lr: ChartSpec = { file: 'lr', title: 'LR', yLabel: 'lr', series: (m) => [{ name: 'lr', points: m.train.map((t) => [t.step, t.lr]) }] };
    const r = writeComparisonReport({
      outDir,
      title: 't',
      description: 'd',
      runs: [
        { label: 'A', dir: runs[0]!.dir },
        { label: 'a', dir: join(runs[1]!.dir, 'metrics.jsonl') },
      ],
      charts: [lr],
      summary: (m) => [['steps', m.train.length]],
    });
    expect(r.svgs.map((p) => p.slice(outDir.length + 1))).toEqual(['lr-a.svg', 'lr-a-2.svg']);
    expect(readFileSync(r.readme, 'utf8')).toContain('| steps | 8 | 8 |');
  });

  it('says which run has no metrics', () => {
    expect(() =>
      writeComparisonReport({
        outDir: mkdtempSync(join(tmpdir(), 'report-')),
        title: 't',
        description: 'd',
        runs: [{ label: 'ghost', dir: '/nonexistent/run' }],
      }),
    ).toThrow(/run "ghost": no metrics at \/nonexistent\/run\/metrics\.jsonl/);
  });
});
