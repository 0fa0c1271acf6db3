/**
 * A run's header card: status, step, latest losses and rate, and what the run said about itself
 * at the start (config, model size, adapter, memory plan; src/ui/observer.ts RunHeader).
 */
/// <reference lib="dom" />
import type { UiHeader } from '../protocol.ts';
import { el } from './dom.ts';
import { fmtDuration, fmtValue } from './format.ts';
import type { RunData, Value } from './store.ts';

const STATUS_TEXT: Record<RunData['status'], string> = {
  running: 'running',
  done: 'finished',
  stopped: 'stopped (--stop-after)',
  diverged: 'diverged',
  failed: 'failed',
  interrupted: 'interrupted',
  saved: 'saved run',
};

function last(a: readonly Value[]): Value {
  return a.length ? a[a.length - 1]! : null;
}

function modelLine(h: UiHeader): string {
  const m = (h.config?.model ?? {}) as Record<string, unknown>;
  const p = (h.config?.precision ?? {}) as Record<string, unknown>;
  const parts = [
    m.preset ? String(m.preset) : '',
    m.layers !== undefined ? `${String(m.layers)} layers × hidden ${String(m.hidden)}` : '',
    m.experts !== undefined ? `${String(m.experts)} experts, top-${String(m.topK)}` : '',
    h.parameters !== undefined ? `${h.parameters.toLocaleString('en-US')} parameters` : '',
    p.activations ? `${String(p.activations)} activations` : '',
  ];
  return parts.filter(Boolean).join(' · ');
}

export class RunCard {
  readonly root: HTMLElement;
  private readonly status = el('span', { class: 'badge' });
  private readonly step = el('span', { class: 'big' });
  private readonly total = el('span');
  private readonly facts = el('div', { class: 'facts' });
  private readonly message = el('div', { class: 'message' });
  private readonly details = el('div', { class: 'details' });
  private header: UiHeader | null = null;

  constructor(private readonly index: number) {
    this.status.dataset.testid = `status-${index}`;
    this.step.dataset.testid = `step-${index}`;
    this.root = el('section', { class: 'card run-card' });
  }

  update(d: RunData, now: number): void {
    if (!this.root.firstChild) this.root.append(el('div', { class: 'run-title' }, el('span', { class: 'run-label' }, d.label), this.status), el('div', { class: 'run-step' }, 'step ', this.step, this.total), this.facts, this.message, this.details);
    this.status.textContent = STATUS_TEXT[d.status];
    this.status.className = `badge status-${d.status}`;
    const total = (d.header?.config?.schedule as { steps?: unknown } | undefined)?.steps;
    const lastStep = d.train.step.length ? d.train.step[d.train.step.length - 1]! : null;
    this.step.textContent = lastStep === null ? '—' : String(lastStep);
    this.total.textContent = typeof total === 'number' ? ` / ${total}` : '';
    const started = d.header?.startedAt ? Date.parse(d.header.startedAt) : NaN;
    const facts: [string, string][] = [
      ['train loss', fmtValue(last(d.train.loss))],
      ['valid loss', fmtValue(last(d.valid.loss))],
      ['tokens/s', fmtValue(last(d.train.tokensPerSecond) === null ? null : Math.round(last(d.train.tokensPerSecond)!))],
      ['skipped', String(d.skipped.length)],
      ...(d.status === 'running' && Number.isFinite(started) ? ([['elapsed', fmtDuration((now - started) / 1000)]] as [string, string][]) : []),
    ];
    this.facts.replaceChildren(...facts.map(([k, v]) => el('span', { class: 'fact' }, el('span', { class: 'k' }, k), ' ', el('span', { class: 'v', 'data-testid': `${k.replace(/\W+/g, '-')}-${this.index}` }, v))));
    this.message.textContent = d.message ?? '';
    if (d.header !== this.header) this.renderHeader(d);
  }

  private renderHeader(d: RunData): void {
    this.header = d.header;
    const h = d.header;
    const rows: Node[] = [el('div', { class: 'dir' }, `folder ${d.dir}`)];
    if (h) {
      const model = modelLine(h);
      if (model) rows.push(el('div', {}, model));
      if (h.adapter) rows.push(el('div', { 'data-testid': `adapter-${this.index}` }, `adapter: ${h.adapter.vendor} ${h.adapter.device || h.adapter.description} (${h.adapter.architecture || '?'}, ${h.adapter.backend})`));
      if (h.startStep) rows.push(el('div', {}, `resumed after step ${h.startStep}`));
      if (h.plan) rows.push(el('details', {}, el('summary', {}, 'memory plan'), el('pre', {}, h.plan)));
      if (h.config) rows.push(el('details', {}, el('summary', {}, 'config'), el('pre', {}, JSON.stringify(h.config, null, 2))));
    } else rows.push(el('div', { class: 'muted' }, 'no header.json in this run folder (written by train.js since the dashboard exists)'));
    this.details.replaceChildren(...rows);
  }
}
