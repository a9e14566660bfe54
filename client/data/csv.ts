/**
 * CSV files from disk (gzipped or not); the format and its parser are in csv-text.ts, which the
 * browser participant shares.
 */
import { readMaybeGzipped } from './idx.js';
import { parseCsv, type CsvDataset, type CsvOptions } from './csv-text.js';

export { parseCsv, pixelScaling, type CsvDataset, type CsvOptions, type CsvPreprocessing } from './csv-text.js';

/** Reads a CSV file (gzipped or not) as a labelled dataset; errors name the file, line and column. */
export function loadCsv(path: string, options: CsvOptions = {}): CsvDataset {
  const bytes = readMaybeGzipped(path);
  return parseCsv(new TextDecoder('utf-8').decode(bytes), path, options);
}
