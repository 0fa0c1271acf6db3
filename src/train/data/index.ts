/** Public surface of the data pipeline. */
export { DataError } from './errors.ts';
export {
  DataConfigSchema,
  SourceSchema,
  DATASET_NAMES,
  checkHorizons,
  effectiveMinLength,
  effectiveStride,
  parseDataConfig,
  type DataConfig,
  type DataConfigInput,
  type DatasetName,
  type SourceConfig,
} from './config.ts';
export { parseNumericCell, type Series } from './series.ts';
export { CsvSeriesBuilder, loadCsv, parseCsv } from './csv.ts';
export { checkDataFile, type LoadOptions, type LoadProgress } from './files.ts';
export { loadJson, loadJsonl, parseJsonArray, parseJsonl } from './json.ts';
export { DATASETS, loadDataset } from './datasets.ts';
export { generateSynthetic } from './synthetic.ts';
export { cleanSeries, interpolateGaps, type CleanReport, type CleanSeries } from './clean.ts';
export { splitSeries, type SplitResult } from './split.ts';
export { NORM_EPS, WindowDataset, meanStd, normScale, windowStarts, type Batch, type DataState, type Segment, type WindowInfo } from './windows.ts';
export { describeSource, formatReport, loadData, loadSeries, type DataReport, type LoadDataOptions, type LoadedData } from './load.ts';
