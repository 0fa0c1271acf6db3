/** Config → cleaned, split, windowed data: the one entry point the training CLI calls (Node: it reads the files; prepare.ts does the rest). */
import { statSync } from 'node:fs';
import type { DataConfig, SourceConfig } from './config.ts';
import { loadCsv } from './csv.ts';
import { resolveDataPath, type LoadOptions, type LoadProgress } from './files.ts';
import { loadDataset } from './datasets.ts';
import { loadJson, loadJsonl } from './json.ts';
import { describeSource, prepareData, type LoadedData } from './prepare.ts';
import type { Series } from './series.ts';
import { generateClasses, generateSynthetic } from './synthetic.ts';

export interface LoadDataOptions {
  cwd: string;
  seed?: number;
  /** A progress display for a file of this many bytes (the CLI draws a bar or lines for big files). */
  progress?: (file: string, bytes: number) => LoadProgress;
  /** Aborts a long load (SIGINT / SIGTERM during set-up). */
  signal?: AbortSignal;
  /** Collects the loader's lines for the data report (see DataReport.notes). */
  notes?: string[];
}

export async function loadSeries(src: SourceConfig, cwd: string, contextLength: number, opts: Omit<LoadDataOptions, 'cwd' | 'seed'> = {}): Promise<Series[]> {
  const load = (path: string): LoadOptions => {
    const progress = opts.progress ? opts.progress(path, sizeOf(resolveDataPath(path, cwd))) : undefined;
    return { ...(progress ? { progress } : {}), ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.notes ? { notes: opts.notes } : {}) };
  };
  switch (src.kind) {
    case 'csv':
      return loadCsv(src, cwd, load(src.path));
    case 'jsonl':
      return loadJsonl(src, cwd, load(src.path));
    case 'json':
      return loadJson(src, cwd);
    case 'dataset':
      return loadDataset(src.name);
    case 'synthetic': {
      const { kind: _k, ...opts } = src;
      return generateSynthetic(opts);
    }
    case 'synthetic-classes': {
      const { kind: _k, ...opts } = src;
      return generateClasses(opts, contextLength);
    }
  }
}

/** Size in bytes, 0 when it cannot be read (the loader's own check then names the problem). */
function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export async function loadData(cfg: DataConfig, opts: LoadDataOptions): Promise<LoadedData> {
  const notes: string[] = [];
  const raw = await loadSeries(cfg.source, opts.cwd, cfg.contextLength, { ...opts, notes });
  return prepareData(raw, cfg, { ...(opts.seed !== undefined ? { seed: opts.seed } : {}), source: describeSource(cfg.source), notes });
}
