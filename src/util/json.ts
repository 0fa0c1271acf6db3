/**
 * JSON with non-finite numbers spelled out: JSON has no NaN, and a logger that turns NaN into 0
 * or null hides a dead run (docs/DESIGN.md §7.4), so NaN, Infinity and -Infinity are written as
 * those strings. Used by the metrics log (src/train/run/metrics.ts) and the dashboard (src/ui/hub.ts).
 */
export function jsonSafe(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

type JsonLine = { line: number; raw: unknown } | { line: number; error: string; cut: boolean };

/**
 * The non-blank lines of JSONL text (metrics.jsonl), each parsed, with its 1-based line number;
 * a line that does not parse carries the parser's message, and `cut` when it is the last line and
 * no newline follows it (a line still being written).
 */
export function* jsonLines(text: string): Generator<JsonLine> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    try {
      yield { line: i + 1, raw: JSON.parse(line) as unknown };
    } catch (e) {
      yield { line: i + 1, error: (e as Error).message, cut: i === lines.length - 1 && !text.endsWith('\n') };
    }
  }
}
