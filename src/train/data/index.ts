/** Public surface of the data pipeline. */
export { DataError } from './errors.ts';
export { DataConfigSchema, SourceSchema, DATASET_NAMES, effectiveStride, parseDataConfig, type DataConfig, type SourceConfig } from './config.ts';
export { type CleanSeries } from './clean.ts';
export { splitSeries } from './split.ts';
export { NORM_EPS, meanStd, normScale, windowStarts } from './windows.ts';
export { loadData } from './load.ts';
export { formatReport, type LoadedData } from './prepare.ts';
