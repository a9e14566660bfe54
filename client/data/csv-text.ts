/**
 * CSV with a header row and a label column, for sites whose data is a table: every other
 * column is a numeric feature. Fields follow RFC 4180: separated by a delimiter (`,` by
 * default), optionally enclosed in double quotes, in which the delimiter and line breaks are
 * literal and `""` stands for one `"`. CRLF and LF line ends, a UTF-8 byte-order mark and a
 * gzipped file (recognised by its magic bytes) are accepted; blank lines are skipped.
 *
 * Text in, dataset out, with no Node imports: the browser participant parses the files a person
 * picks with this same code (csv.ts adds reading from disk).
 */
import type { LabeledDataset } from './dataset.js';

export interface CsvOptions {
  /** Label column, by header name or 0-based index (default "label"). */
  label?: string | number;
  /** Columns to leave out of the features (ids, timestamps), by name or 0-based index. */
  exclude?: Array<string | number>;
  /** Shape of one sample, e.g. [28, 28, 1]; its product must equal the number of feature columns. Default [features]. */
  sampleShape?: number[];
  /**
   * "integer": labels must be integers ≥ 0, used as class ids. "string": labels are names,
   * mapped to ids 0, 1, … in sorted order (JavaScript code-unit order, so independent of
   * locale). "auto" (default): integer when every label is one, string otherwise.
   */
  labels?: 'auto' | 'integer' | 'string';
  /** Number of classes; max label + 1 (or the number of names) when omitted. */
  numClasses?: number;
  /**
   * For string labels: the class names in class-id order, as fixed elsewhere (the training
   * set's, a session's). Without it the names are numbered in sorted order of those present,
   * so a file that lacks a class numbers the others differently — a test file or another site.
   */
  classNames?: readonly string[];
  delimiter?: string;
  /**
   * "auto" (default): features that look like 8-bit pixel intensities (see pixelScaling) are
   * divided by 255, as the IDX loader does. "none": features
   * are used as read. Either way the dataset's `preprocessing` says what was done.
   */
  scaling?: 'auto' | 'none';
}

/** The fewest feature columns read as an image (4×4 pixels); tables have fewer columns as a rule. */
const PIXEL_COLUMNS = 16;

/** What was done to the features as read, for a model card: a model trained on them needs the same at inference. */
export interface CsvPreprocessing {
  /** Every feature value as read was divided by this (1: used as read). */
  divisor: number;
  /** Why, in words. */
  note: string;
}

export interface CsvDataset extends LabeledDataset {
  /** Header names of the feature columns, in feature order. */
  featureColumns: string[];
  labelColumn: string;
  /** For string labels: classNames[id] is the label text of class id. Absent for integer labels. */
  classNames?: string[];
  preprocessing: CsvPreprocessing;
}

/**
 * The rule for CSV features outside [0, 1]. The IDX loader scales pixels to [0, 1]; a CSV export
 * of the same images (MNIST as CSV is common) holds 0–255, and used raw it trains silently badly
 * (the same model, the same learning rate, inputs 255 times larger). Features that look like 8-bit
 * pixels — at least PIXEL_COLUMNS columns, every value an integer in [0, 255], the largest in the
 * upper half of the byte (≥ 128: an 8-bit image set always has bright pixels somewhere) — are
 * divided by 255, the same input IDX gives, rather than refused, which would only make every such
 * site do the division by hand. The dataset records it (`preprocessing`, for the model card) and
 * `scaling: "none"` turns it off. A table of a few small-integer columns (ages, counts) does not
 * look like that; if one did, a uniform scale of every feature changes nothing a model can
 * learn. Other features outside [0, 1] (negative, fractional, beyond 255: tabular data) are used
 * as read, and recorded so.
 */
export function pixelScaling(x: Float32Array, mode: 'auto' | 'none', columns: number): CsvPreprocessing {
  let min = Infinity;
  let max = -Infinity;
  let integers = true;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    if (integers && !Number.isInteger(v)) integers = false;
  }
  if (min >= 0 && max <= 1) return { divisor: 1, note: 'features already in [0, 1]: used as read' };
  const pixels = integers && min >= 0 && max <= 255 && max >= 128 && columns >= PIXEL_COLUMNS;
  if (mode === 'none') {
    return { divisor: 1, note: `features in [${min}, ${max}] used as read (scaling: "none")${pixels ? '; they look like 0–255 pixel data, which the IDX loader divides by 255' : ''}` };
  }
  if (!pixels) return { divisor: 1, note: `features in [${min}, ${max}] do not look like 0–255 pixel data: used as read` };
  for (let i = 0; i < x.length; i++) x[i]! /= 255;
  return { divisor: 255, note: `features are integers in [${min}, ${max}], read as 0–255 pixel intensities: divided by 255 to [0, 1], as the IDX loader does` };
}

/** One parsed record and the (1-based) line it starts on. */
interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * Splits CSV text into records. `onRecord` may throw to stop early. A blank line (no
 * characters at all between line breaks) is skipped, not read as a record of one empty field.
 */
function forEachRecord(text: string, file: string, delimiter: string, onRecord: (record: CsvRecord) => void): void {
  const QUOTE = 34;
  const LF = 10;
  const CR = 13;
  const delim = delimiter.charCodeAt(0);
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    // A blank line.
    const first = text.charCodeAt(i);
    if (first === LF || first === CR) {
      i += first === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      continue;
    }
    for (;;) {
      // One field starting at i.
      if (text.charCodeAt(i) === QUOTE) {
        let value = '';
        let j = i + 1;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q < 0) {
            throw new Error(`E_CSV_QUOTE: ${file} line ${startLine}, column ${fields.length + 1}: the quoted field never closes`);
          }
          const chunk = text.slice(j, q);
          for (let k = 0; k < chunk.length; k++) if (chunk.charCodeAt(k) === LF) line++;
          value += chunk;
          if (text.charCodeAt(q + 1) === QUOTE) {
            value += '"';
            j = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        fields.push(value);
        const next = text.charCodeAt(i);
        if (i < n && next !== delim && next !== LF && next !== CR) {
          throw new Error(
            `E_CSV_QUOTE: ${file} line ${line}, column ${fields.length}: characters after the closing quote; ` +
              `write a literal quote inside a quoted field as ""`,
          );
        }
      } else {
        let j = i;
        while (j < n) {
          const c = text.charCodeAt(j);
          if (c === delim || c === LF || c === CR) break;
          j++;
        }
        fields.push(text.slice(i, j));
        i = j;
      }
      // After a field: delimiter, line end or end of text.
      if (i >= n) break;
      const c = text.charCodeAt(i);
      if (c === delim) {
        i++;
        if (i >= n) {
          fields.push('');
          break;
        }
        continue;
      }
      i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      break;
    }
    onRecord({ fields, line: startLine });
  }
}

function resolveColumn(header: string[], column: string | number, file: string, what: string): number {
  if (typeof column === 'number') {
    if (!Number.isInteger(column) || column < 0 || column >= header.length) {
      throw new Error(`E_CSV_COLUMN: ${file}: ${what} column index ${column} is outside the header's ${header.length} columns (0-based)`);
    }
    return column;
  }
  const index = header.indexOf(column);
  if (index < 0) {
    const names = header.length > 12 ? `${header.slice(0, 12).join(', ')}, … (${header.length} in all)` : header.join(', ');
    throw new Error(`E_CSV_COLUMN: ${file}: no ${what} column "${column}" in the header (columns: ${names})`);
  }
  return index;
}

/** Parses CSV text; `file` names the source in errors. */
export function parseCsv(text: string, file: string, options: CsvOptions = {}): CsvDataset {
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new Error(`E_CSV_OPTIONS: the delimiter must be one character other than a quote or line break; got ${JSON.stringify(delimiter)}`);
  }
  const labelMode = options.labels ?? 'auto';

  let header: string[] | undefined;
  let labelIndex = -1;
  let featureIndices: number[] = [];
  let x = new Float32Array(1024);
  let rows = 0;
  const rawLabels: string[] = [];
  const labelLines: number[] = [];

  forEachRecord(text, file, delimiter, ({ fields, line }) => {
    if (header === undefined) {
      header = fields.map((f) => f.trim());
      labelIndex = resolveColumn(header, options.label ?? 'label', file, 'label');
      const excluded = new Set((options.exclude ?? []).map((c) => resolveColumn(header!, c, file, 'excluded')));
      if (excluded.has(labelIndex)) throw new Error(`E_CSV_OPTIONS: ${file}: the label column "${header[labelIndex]}" is also excluded`);
      featureIndices = header.map((_, k) => k).filter((k) => k !== labelIndex && !excluded.has(k));
      if (featureIndices.length === 0) throw new Error(`E_CSV_EMPTY: ${file}: the header has no feature columns besides the label "${header[labelIndex]}"`);
      return;
    }
    if (fields.length !== header.length) {
      throw new Error(`E_CSV_FIELDS: ${file} line ${line}: ${fields.length} fields; the header (line 1) has ${header.length}`);
    }
    const width = featureIndices.length;
    if ((rows + 1) * width > x.length) {
      const grown = new Float32Array(Math.max(2 * x.length, (rows + 1) * width));
      grown.set(x);
      x = grown;
    }
    const base = rows * width;
    for (let k = 0; k < width; k++) {
      const column = featureIndices[k]!;
      const raw = fields[column]!;
      const value = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(value)) {
        throw new Error(`E_CSV_VALUE: ${file} line ${line}, column ${column + 1} ("${header[column]}"): ${JSON.stringify(raw)} is not a finite number`);
      }
      x[base + k] = value;
    }
    rawLabels.push(fields[labelIndex]!.trim());
    labelLines.push(line);
    rows++;
  });

  if (header === undefined) throw new Error(`E_CSV_EMPTY: ${file} is empty; expected a header row and data rows`);
  if (rows === 0) throw new Error(`E_CSV_EMPTY: ${file} has a header but no data rows`);
  const columns: string[] = header;
  const labelColumn = columns[labelIndex]!;
  const labelAt = (r: number) => `${file} line ${labelLines[r]}, column ${labelIndex + 1} ("${labelColumn}")`;

  const y = new Int32Array(rows);
  let classNames: string[] | undefined;
  // "3.0" counts as 3: tables written from float columns (pandas with a missing value) look like that.
  const isInteger = (s: string) => /^\+?\d+(\.0*)?$/.test(s);
  if (labelMode === 'integer' || (labelMode === 'auto' && rawLabels.every(isInteger))) {
    for (let r = 0; r < rows; r++) {
      const s = rawLabels[r]!;
      if (!isInteger(s)) throw new Error(`E_CSV_LABEL: ${labelAt(r)}: label ${JSON.stringify(s)} is not an integer ≥ 0`);
      y[r] = Number(s);
    }
  } else {
    classNames = options.classNames !== undefined ? [...options.classNames] : [...new Set(rawLabels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const ids = new Map(classNames.map((name, id) => [name, id]));
    for (let r = 0; r < rows; r++) {
      const s = rawLabels[r]!;
      if (s === '') throw new Error(`E_CSV_LABEL: ${labelAt(r)}: the label is empty`);
      const id = ids.get(s);
      if (id === undefined) throw new Error(`E_CSV_LABEL: ${labelAt(r)}: label ${JSON.stringify(s)} is not one of the classes ${classNames.slice(0, 10).map((n) => JSON.stringify(n)).join(', ')}${classNames.length > 10 ? ', …' : ''}`);
      y[r] = id;
    }
  }

  let maxLabel = 0;
  for (const c of y) if (c > maxLabel) maxLabel = c;
  const numClasses = options.numClasses ?? (classNames?.length ?? maxLabel + 1);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`E_CSV_OPTIONS: numClasses must be a positive integer; got ${numClasses}`);
  if (maxLabel >= numClasses) {
    const r = y.findIndex((c) => c >= numClasses);
    throw new Error(`E_CSV_LABEL: ${labelAt(r)}: label ${rawLabels[r]} is outside [0, ${numClasses}) for numClasses ${numClasses}`);
  }

  const width = featureIndices.length;
  const sampleShape = options.sampleShape ?? [width];
  const product = sampleShape.reduce((a, b) => a * b, 1);
  if (!sampleShape.every((d) => Number.isInteger(d) && d >= 1) || product !== width) {
    throw new Error(`E_CSV_SHAPE: ${file}: sampleShape [${sampleShape.join(', ')}] holds ${product} values; the file has ${width} feature columns`);
  }

  const features = x.length === rows * width ? x : x.slice(0, rows * width);
  const scaling = options.scaling ?? 'auto';
  if (scaling !== 'auto' && scaling !== 'none') throw new Error(`E_CSV_OPTIONS: scaling must be "auto" or "none"; got ${JSON.stringify(scaling)}`);
  const preprocessing = pixelScaling(features, scaling, width);
  const dataset: CsvDataset = {
    x: features,
    y,
    sampleShape: [...sampleShape],
    numClasses,
    featureColumns: featureIndices.map((k) => columns[k]!),
    labelColumn,
    preprocessing,
  };
  if (classNames !== undefined) dataset.classNames = classNames;
  return dataset;
}
