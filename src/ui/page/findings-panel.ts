/**
 * The runs' findings (src/diagnose, docs/FINDINGS.md), as the page's own Diagnoser finds them in
 * the records it draws: severity, title, layer, the evidence, the likely cause, the fix as
 * `--set` flags and the experiment that reproduces it. Each finding's first step is also a marker
 * on the loss chart (and on the layer's routing charts and heatmap band): src/ui/page/panels.ts.
 */
/// <reference lib="dom" />
import type { Finding } from '../../diagnose/types.ts';
import { el } from './dom.ts';
import type { RunData } from './store.ts';

function when(f: Finding): string {
  if (f.firstStep === 0 && f.lastStep === 0) return 'before training';
  const span = f.firstStep === f.lastStep ? `step ${f.firstStep}` : `steps ${f.firstStep}–${f.lastStep}`;
  return f.firstStep === 0 ? `${span} (0: before training)` : span;
}

function findingCard(f: Finding, run: number): HTMLElement {
  const fix = f.fix.sets.length ? f.fix.sets.map((s) => `--set ${s}`).join(' ') : null;
  return el(
    'div',
    {
      class: `finding sev-${f.severity} ${f.status}`,
      'data-testid': 'finding',
      'data-finding-id': f.id,
      'data-run': String(run),
      'data-first-step': String(f.firstStep),
    },
    el(
      'div',
      { class: 'finding-head' },
      el('span', { class: `badge sev ${f.severity}` }, f.severity),
      el('span', { class: 'finding-title' }, f.title),
      ...(f.layer !== null ? [el('span', { class: 'badge layer' }, `layer ${f.layer}`)] : []),
      el('span', { class: 'muted' }, `${when(f)} · ${f.status} · ${f.id}`),
    ),
    el('ul', { class: 'evidence' }, ...f.evidence.map((e) => el('li', {}, e.text))),
    el('div', { class: 'cause' }, el('span', { class: 'k' }, 'cause '), f.cause),
    el('div', { class: 'fix' }, el('span', { class: 'k' }, 'fix '), ...(fix ? [el('code', { 'data-testid': 'fix' }, fix), '  '] : []), f.fix.note),
    ...(f.experiment ? [el('div', { class: 'repro' }, el('span', { class: 'k' }, 'reproduce '), el('code', {}, `npm run experiment -- ${f.experiment}`))] : []),
  );
}

export class FindingsPanel {
  readonly root = el('section', { class: 'card wide findings', 'data-testid': 'findings' });
  private shown = '';

  update(runs: readonly RunData[]): void {
    const per = runs.map((d) => ({ d, findings: d.diagnosis.findings(), unjudged: d.diagnosis.unjudged() }));
    // Redraw only when something a reader sees changed (the panel is rebuilt, which resets a selection).
    const key = JSON.stringify(
      per.map((p) => [p.d.label, p.unjudged, p.findings.map((f) => [f.id, f.severity, f.status, f.title, f.lastStep, f.evidence.map((e) => e.text)])]),
    );
    if (key === this.shown) return;
    this.shown = key;
    const total = per.reduce((n, p) => n + p.findings.length, 0);
    const multi = runs.length > 1;
    const title = el('div', { class: 'chart-title' }, total ? `Findings: ${total}` : 'Findings: none');
    const blocks = per.flatMap(({ d, findings, unjudged }) => {
      const out: Node[] = [];
      if (multi) out.push(el('div', { class: 'findings-run' }, d.label));
      if (!findings.length) out.push(el('div', { class: 'muted' }, `no findings${d.train.step.length ? ` over ${d.train.step.length} steps` : ' yet'}`));
      out.push(...findings.map((f) => findingCard(f, d.run)));
      if (unjudged.length) out.push(el('div', { class: 'muted unjudged' }, `not judged: ${unjudged.join('; ')}`));
      return out;
    });
    this.root.replaceChildren(title, ...blocks);
  }
}
