/**
 * State dicts with the Hugging Face Time-MoE names. Stacked expert tensors expand to one entry
 * per expert (`...experts.{j}.gate_proj.weight`), so weights move between the two engines.
 */
import type { Parameter } from './parameter.ts';

export interface StateEntry {
  shape: number[];
  data: Float32Array;
}

export type StateDict = Map<string, StateEntry>;

/** Weights (or, with `which = 'grad'`, their gradients) by state-dict name. */
export async function stateDict(params: readonly Parameter[], which: 'data' | 'grad' = 'data'): Promise<StateDict> {
  const out: StateDict = new Map();
  for (const p of params) {
    const t = which === 'data' ? p.data : p.grad;
    if (!t) throw new Error(`parameter ${p.name} has no gradient`);
    const all = await t.readF32();
    for (const e of p.stateEntries()) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      out.set(e.name, { shape: e.shape, data: all.slice(e.offset, e.offset + n) });
    }
  }
  return out;
}

/**
 * Load weights by name. Every parameter must be present with its exact shape; unknown names are
 * an error too (a checkpoint of another model shape must not half-load).
 */
export function loadStateDict(params: readonly Parameter[], dict: StateDict): void {
  const problems: string[] = [];
  const used = new Set<string>();
  const staged: { p: Parameter; data: Float32Array }[] = [];
  for (const p of params) {
    const data = new Float32Array(p.data.size);
    for (const e of p.stateEntries()) {
      const src = dict.get(e.name);
      if (!src) {
        problems.push(`missing tensor ${e.name} [${e.shape.join(', ')}]`);
        continue;
      }
      used.add(e.name);
      if (src.shape.length !== e.shape.length || src.shape.some((d, i) => d !== e.shape[i])) {
        problems.push(`${e.name}: shape [${src.shape.join(', ')}] in the file, the model needs [${e.shape.join(', ')}]`);
        continue;
      }
      data.set(src.data, e.offset);
    }
    staged.push({ p, data });
  }
  for (const name of dict.keys()) if (!used.has(name)) problems.push(`unexpected tensor ${name} (not in this model)`);
  if (problems.length) {
    const shown = problems.slice(0, 12).join('\n  ');
    throw new Error(`state dict does not match the model (${problems.length} problems):\n  ${shown}${problems.length > 12 ? '\n  …' : ''}`);
  }
  // Write only after every check passed, so a bad file leaves the model untouched.
  for (const { p, data } of staged) p.data.rt.write(p.data, data);
}
