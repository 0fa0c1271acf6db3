/**
 * A run's header card: status, step, latest losses and rate, and what the run said about itself
 * at the start (config, model size, adapter, memory plan; src/ui/observer.ts RunHeader).
 */
/// <reference lib="dom" />
import type { UiHeader } from '../protocol.ts';
import { el } from './dom.ts';
import { fmtDuration, fmtValue } from './format.ts';
import type { RunData, Value } from './store.ts';
import { timing } from './timing.ts';

const STATUS_TEXT: Record<RunData['status'], string> = {
  running: 'running',
  done: 'finished',
  stopped: 'stopped',
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
  private readonly swatch = el('span', { class: 'swatch' });
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

  /** `color`: the run's colour on every chart when several runs are shown (null: one run). */
  update(d: RunData, now: number, color: string | null = null): void {
    if (!this.root.firstChild)
      this.root.append(
        el('div', { class: 'run-title' }, this.swatch, el('span', { class: 'run-label' }, d.label), this.status),
        el('div', { class: 'run-step' }, 'step ', this.step, this.total),
        this.facts,
        this.message,
        this.details,
      );
    this.swatch.hidden = color === null;
    if (color) this.swatch.style.background = color;
    this.status.textContent = STATUS_TEXT[d.status];
    this.status.className = `badge status-${d.status}`;
    const t = timing(d);
    this.step.textContent = t.lastStep === null ? '—' : String(t.lastStep);
    this.total.textContent = t.totalSteps !== null ? ` / ${t.totalSteps}` : '';
    const started = d.header?.startedAt ? Date.parse(d.header.startedAt) : NaN;
    const running = d.status === 'running';
    const facts: [string, string][] = [
      ['train loss', fmtValue(last(d.train.loss))],
      ['valid loss', fmtValue(last(d.valid.loss))],
      ['tokens/s', fmtValue(last(d.train.tokensPerSecond) === null ? null : Math.round(last(d.train.tokensPerSecond)!))],
      ['s/step', t.secondsPerStep === null ? '—' : fmtValue(Number(t.secondsPerStep.toPrecision(3)))],
      ...(running ? ([['ETA', t.etaSeconds === null ? '—' : fmtDuration(t.etaSeconds)]] as [string, string][]) : []),
      ['skipped', String(d.skipped.length)],
      ...(running && Number.isFinite(started) ? ([['elapsed', fmtDuration((now - started) / 1000)]] as [string, string][]) : []),
    ];
    this.facts.replaceChildren(
      ...facts.map(([k, v]) =>
        el(
          'span',
          { class: 'fact' },
          el('span', { class: 'k' }, k),
          ' ',
          el('span', { class: 'v', 'data-testid': `${k.replace(/\W+/g, '-').toLowerCase()}-${this.index}` }, v),
        ),
      ),
    );
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
      if (h.adapter)
        rows.push(
          el(
            'div',
            { 'data-testid': `adapter-${this.index}` },
            `adapter: ${h.adapter.vendor} ${h.adapter.device || h.adapter.description} (${h.adapter.architecture || '?'}, ${h.adapter.backend})`,
          ),
        );
      if (h.startStep) rows.push(el('div', {}, `resumed after step ${h.startStep}`));
      if (h.plan) rows.push(el('details', {}, el('summary', {}, 'memory plan'), el('pre', {}, h.plan)));
      if (h.config) rows.push(el('details', {}, el('summary', {}, 'config'), el('pre', {}, JSON.stringify(h.config, null, 2))));
    } else rows.push(el('div', { class: 'muted' }, 'no header.json in this run folder (written by train.js since the dashboard exists)'));
    this.details.replaceChildren(...rows);
  }
}
