/**
 * Every skipped step of every run: why (a non-finite tensor, or an f16 loss-scale overflow), and
 * the tensors the guards named, the first being where the non-finite value was born. Under it, the
 * diagnosis's notes: handled events that are not findings (one skipped step that did not recur).
 */
/// <reference lib="dom" />
import { el } from './dom.ts';
import { fmtValue } from './format.ts';
import type { RunData } from './store.ts';

export class SkippedTable {
  readonly root = el('section', { class: 'card wide skipped' });
  private shown = '';

  update(runs: readonly RunData[]): void {
    const total = runs.reduce((n, d) => n + d.skipped.length, 0);
    const multi = runs.length > 1;
    const notes = runs.flatMap((d) => d.diagnosis.notes().map((n) => ({ run: d.label, ...n })));
    const key = JSON.stringify([total, notes]);
    if (key === this.shown) return;
    this.shown = key;
    const title = el('div', { class: 'chart-title' }, total ? `Skipped steps: ${total}` : 'Skipped steps: none');
    const noteList = notes.length
      ? [
          el(
            'ul',
            { class: 'notes', 'data-testid': 'notes' },
            ...notes.map((n) => el('li', { 'data-step': String(n.step) }, el('span', { class: 'k' }, 'note '), multi ? `${n.run}: ${n.text}` : n.text)),
          ),
        ]
      : [];
    if (!total) return this.root.replaceChildren(title, ...noteList);
    const head = el(
      'tr',
      {},
      ...[...(multi ? ['run'] : []), 'step', 'why', 'first non-finite tensor', 'layer', 'non-finite values', 'finite min / max / mean', 'also non-finite'].map(
        (h) => el('th', {}, h),
      ),
    );
    const rows = runs.flatMap((d) =>
      d.skipped.map((k) => {
        const first = k.tensors[0];
        return el(
          'tr',
          { 'data-testid': 'skipped-row', 'data-step': String(k.step), class: k.overflow ? 'overflow' : 'bad' },
          ...(multi ? [el('td', {}, d.label)] : []),
          el('td', {}, String(k.step)),
          el('td', {}, k.overflow ? `loss-scale overflow at scale ${fmtValue(k.lossScale)}` : 'non-finite: update skipped'),
          el('td', { class: 'tensor' }, first ? first.name : k.overflow ? 'gradient norm not finite' : '(not named: logging.metricsEvery > 1)'),
          el('td', {}, first ? String(first.layer) : '—'),
          el('td', {}, first ? fmtValue(first.nonFinite) : '—'),
          el('td', {}, first ? `${fmtValue(first.min)} / ${fmtValue(first.max)} / ${fmtValue(first.mean)}` : '—'),
          el(
            'td',
            { class: 'tensor' },
            k.tensors
              .slice(1)
              .map((t) => t.name)
              .join(', ') || '—',
          ),
        );
      }),
    );
    this.root.replaceChildren(title, el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)), ...noteList);
  }
}
