/** Numbers for the page: NaN and infinities spelled out, never shown as 0; "—" for not logged. */
import type { Value } from './store.ts';

export function fmtValue(v: Value | undefined): string {
  if (v === null || v === undefined) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

export function fmtBytes(v: Value | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return fmtValue(v);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v;
  let u = 0;
  while (Math.abs(x) >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  // 4 significant digits, no trailing zeros: 28.63 MiB in a legend, 28 MiB on an axis.
  return `${u === 0 ? x : Number(x.toPrecision(4))} ${units[u]}`;
}

export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds % 60);
  const m = Math.floor(seconds / 60) % 60;
  const h = Math.floor(seconds / 3600);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}
