/**
 * A run's header (src/ui/observer.ts RunHeader, written to <dir>/header.json): checked here
 * whether it comes from a live run or from a file, so the page gets one shape.
 */
import { z } from 'zod';
import type { UiHeader } from './protocol.ts';

const adapter = z.object({ vendor: z.string(), architecture: z.string(), device: z.string(), description: z.string(), backend: z.string() });

export const headerSchema = z.object({
  config: z.record(z.string(), z.unknown()).optional(),
  parameters: z.number().int().nonnegative().optional(),
  plan: z.string().optional(),
  adapter: adapter.optional(),
  startStep: z.number().int().nonnegative().optional(),
  startedAt: z.string().optional(),
  // The diagnosis's inputs (src/diagnose reads them leniently): passed through as they are.
  baseline: z.unknown().optional(),
  data: z.unknown().optional(),
});

export function parseHeader(raw: unknown): { header: UiHeader } | { error: string } {
  const r = headerSchema.safeParse(raw);
  return r.success ? { header: r.data } : { error: r.error.issues.map((i) => `${i.path.join('.') || '(header)'}: ${i.message}`).join('; ') };
}
