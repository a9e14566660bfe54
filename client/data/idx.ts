/**
 * IDX files of the MNIST family from disk: reading (gzipped or not), pairing images with labels
 * in a folder, and datasets from them. The byte format itself is decoded by idx-format.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { LabeledDataset } from './dataset.js';
import { DTYPES, hex, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, isGzip, parseIdx, type IdxArray } from './idx-format.js';

export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdx, type IdxArray, type IdxData, type IdxDtype } from './idx-format.js';

/** The file's bytes, gunzipped when they start with the gzip magic. */
export function readMaybeGzipped(path: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`E_DATA_MISSING: ${path} does not exist`);
  const raw = new Uint8Array(readFileSync(path));
  if (!isGzip(raw)) return raw;
  try {
    return new Uint8Array(gunzipSync(raw));
  } catch (error) {
    throw new Error(`E_GZIP: ${path} starts with the gzip magic but cannot be gunzipped (${(error as Error).message}); the download may be incomplete`);
  }
}

/** Reads and decodes one IDX file, gzipped or not. */
export function readIdxFile(path: string): IdxArray {
  return parseIdx(readMaybeGzipped(path), path);
}

export interface IdxLoadOptions {
  /** Number of classes; max label + 1 when omitted. Labels ≥ numClasses are refused. */
  numClasses?: number;
  /** Divide u8 images by 255 so features lie in [0, 1] (default true). Other dtypes are never scaled. */
  scaleBytes?: boolean;
}

/**
 * An images file and a labels file as a LabeledDataset.
 * Images: any IDX of rank ≥ 2, [n, ...sample]; [n, rows, cols] gets sampleShape [rows, cols, 1]
 * (one grey channel, as the models expect), other ranks keep their shape ([n, d] → [d]).
 * Labels: an IDX of rank 1 and an integer dtype, [n], values in [0, numClasses).
 */
export function loadIdxDataset(imagesPath: string, labelsPath: string, options: IdxLoadOptions = {}): LabeledDataset {
  const images = parseIdx(readMaybeGzipped(imagesPath), imagesPath, { magic: IDX_IMAGES_MAGIC, description: 'u8 images [n, rows, cols]' });
  const labels = parseIdx(readMaybeGzipped(labelsPath), labelsPath, { magic: IDX_LABELS_MAGIC, description: 'u8 labels [n]' });
  return idxToDataset(images, labels, { images: imagesPath, labels: labelsPath }, options);
}

/** Pairs decoded arrays into a dataset; `files` names them in errors. */
export function idxToDataset(
  images: IdxArray,
  labels: IdxArray,
  files: { images: string; labels: string },
  options: IdxLoadOptions = {},
): LabeledDataset {
  if (images.shape.length < 2) {
    throw new Error(
      `E_IDX_MAGIC: ${files.images} has magic number ${hex(magicOf(images))}; expected ${hex(IDX_IMAGES_MAGIC)} ` +
        `(u8 images [n, rows, cols]) or another IDX of rank ≥ 2. Are the images and labels files swapped?`,
    );
  }
  if (labels.shape.length !== 1 || labels.dtype === 'f32' || labels.dtype === 'f64') {
    throw new Error(
      `E_IDX_MAGIC: ${files.labels} has magic number ${hex(magicOf(labels))}; expected ${hex(IDX_LABELS_MAGIC)} ` +
        `(u8 labels [n]) or another integer IDX of rank 1. Are the images and labels files swapped?`,
    );
  }
  const n = images.shape[0]!;
  const labelCount = labels.shape[0]!;
  if (n !== labelCount) {
    throw new Error(`E_IDX_COUNT: ${files.images} holds ${n} images but ${files.labels} holds ${labelCount} labels; they must match`);
  }

  const y = Int32Array.from(labels.data as ArrayLike<number>);
  let maxLabel = -1;
  for (let i = 0; i < y.length; i++) {
    const c = y[i]!;
    if (c < 0) throw new Error(`E_IDX_LABEL: ${files.labels}: label ${i} is ${c}; labels must be ≥ 0`);
    if (c > maxLabel) maxLabel = c;
  }
  const numClasses = options.numClasses ?? Math.max(1, maxLabel + 1);
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`E_IDX_LABEL: numClasses must be a positive integer; got ${numClasses}`);
  }
  if (maxLabel >= numClasses) {
    const at = y.findIndex((c) => c >= numClasses);
    throw new Error(`E_IDX_LABEL: ${files.labels}: label ${at} is ${y[at]}, outside [0, ${numClasses}) for numClasses ${numClasses}`);
  }

  const x = new Float32Array(images.data.length);
  if (images.dtype === 'u8' && options.scaleBytes !== false) {
    for (let i = 0; i < x.length; i++) x[i] = images.data[i]! / 255;
  } else {
    x.set(images.data);
  }
  const sample = images.shape.slice(1);
  const sampleShape = sample.length === 2 ? [sample[0]!, sample[1]!, 1] : sample;
  return { x, y, sampleShape, numClasses };
}

function magicOf(a: IdxArray): number {
  const code = Number(Object.entries(DTYPES).find(([, t]) => t.dtype === a.dtype)![0]);
  return (code << 8) | a.shape.length;
}

/** Files of one images/labels pair in a folder, e.g. prefix "train" or "emnist-digits-test". */
export interface IdxPair {
  prefix: string;
  images: string;
  labels: string;
}

export interface IdxFolder {
  train: LabeledDataset;
  test?: LabeledDataset;
  /** Which files were read, so a run can record them. */
  files: { train: IdxPair; test?: IdxPair };
}

export interface IdxFolderOptions extends IdxLoadOptions {
  /** Prefix of the training pair, e.g. "emnist-digits-train"; found by name when omitted. */
  train?: string;
  /** Prefix of the test pair, e.g. "emnist-digits-test"; found by name when omitted. */
  test?: string;
}

const IMAGES_NAME = /^(.+?)[-._]images[-._]idx(\d)[-._]ubyte(\.gz)?$/;
const LABELS_NAME = /^(.+?)[-._]labels[-._]idx1[-._]ubyte(\.gz)?$/;
const TRAIN_PREFIX = /(^|[-._])train$/;
const TEST_PREFIX = /(^|[-._])(t10k|test)$/;

/** Every `<prefix>-images-idxN-ubyte[.gz]` / `<prefix>-labels-idx1-ubyte[.gz]` pair in `dir`. */
export function findIdxPairs(dir: string): IdxPair[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`E_DATA_MISSING: ${dir} is not a directory`);
  const names = readdirSync(dir).sort();
  const images = new Map<string, string>();
  const labels = new Map<string, string>();
  for (const name of names) {
    for (const [pattern, found] of [
      [IMAGES_NAME, images],
      [LABELS_NAME, labels],
    ] as const) {
      const m = pattern.exec(name);
      if (m === null) continue;
      const prefix = m[1]!;
      // Both foo and foo.gz present: the unpacked one wins (someone unpacked it on purpose).
      const previous = found.get(prefix);
      if (previous === undefined || previous.endsWith('.gz')) found.set(prefix, name);
    }
  }
  const pairs: IdxPair[] = [];
  for (const [prefix, imagesName] of images) {
    const labelsName = labels.get(prefix);
    if (labelsName === undefined) {
      throw new Error(`E_DATA_MISSING: ${join(dir, imagesName)} has no labels file: expected ${join(dir, `${prefix}-labels-idx1-ubyte`)}[.gz]`);
    }
    pairs.push({ prefix, images: join(dir, imagesName), labels: join(dir, labelsName) });
  }
  for (const [prefix, labelsName] of labels) {
    if (!images.has(prefix)) {
      throw new Error(`E_DATA_MISSING: ${join(dir, labelsName)} has no images file: expected ${join(dir, `${prefix}-images-idx3-ubyte`)}[.gz]`);
    }
  }
  return pairs;
}

/**
 * Loads an IDX folder: the standard MNIST names (train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-…), or any `<prefix>-images-idxN-ubyte` /
 * `<prefix>-labels-idx1-ubyte` pairs (also with `.` or `_` separators, as some mirrors name
 * them). The training pair's prefix is `train` or ends in `-train`; the test pair's is `t10k`
 * or `test` or ends in `-t10k` / `-test`; a folder with one pair and no such names is all
 * training data. Both sets get the same numClasses (max label over both + 1 unless given).
 */
export function loadIdxFolder(dir: string, options: IdxFolderOptions = {}): IdxFolder {
  const pairs = findIdxPairs(dir);
  const expected = `expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (and t10k-… for a test set)`;
  if (pairs.length === 0) {
    const listing = readdirSync(dir).slice(0, 20).join(', ') || 'nothing';
    throw new Error(`E_DATA_MISSING: no IDX images/labels pair in ${dir}: ${expected}; found ${listing}`);
  }
  const pick = (role: 'train' | 'test', wanted: string | undefined, pattern: RegExp): IdxPair | undefined => {
    if (wanted !== undefined) {
      const pair = pairs.find((p) => p.prefix === wanted);
      if (pair === undefined) {
        throw new Error(`E_DATA_MISSING: no ${wanted}-images-idx?-ubyte[.gz] / ${wanted}-labels-idx1-ubyte[.gz] pair in ${dir}; found prefixes ${pairs.map((p) => p.prefix).join(', ')}`);
      }
      return pair;
    }
    const matching = pairs.filter((p) => pattern.test(p.prefix));
    if (matching.length > 1) {
      throw new Error(
        `E_DATA_AMBIGUOUS: ${dir} holds several ${role} pairs (${matching.map((p) => p.prefix).join(', ')}); choose one with the ${role} option`,
      );
    }
    return matching[0];
  };
  let train = pick('train', options.train, TRAIN_PREFIX);
  const test = pick('test', options.test, TEST_PREFIX);
  if (train === undefined) {
    const others = pairs.filter((p) => p !== test);
    if (others.length !== 1) {
      throw new Error(`E_DATA_MISSING: no training pair in ${dir}: ${expected}; found prefixes ${pairs.map((p) => p.prefix).join(', ')}`);
    }
    train = others[0]!;
  }

  // Decode first, then settle numClasses over both sets, so train and test agree.
  const decode = (pair: IdxPair) => ({
    images: parseIdx(readMaybeGzipped(pair.images), pair.images, { magic: IDX_IMAGES_MAGIC, description: 'u8 images [n, rows, cols]' }),
    labels: parseIdx(readMaybeGzipped(pair.labels), pair.labels, { magic: IDX_LABELS_MAGIC, description: 'u8 labels [n]' }),
  });
  const trainArrays = decode(train);
  const testArrays = test === undefined ? undefined : decode(test);
  let numClasses = options.numClasses;
  if (numClasses === undefined) {
    let max = 0;
    for (const a of [trainArrays, testArrays]) {
      if (a === undefined || a.labels.dtype === 'f32' || a.labels.dtype === 'f64') continue;
      for (const c of a.labels.data) if (c > max) max = c;
    }
    numClasses = max + 1;
  }
  const trainSet = idxToDataset(trainArrays.images, trainArrays.labels, train, { ...options, numClasses });
  if (test === undefined || testArrays === undefined) return { train: trainSet, files: { train } };
  const testSet = idxToDataset(testArrays.images, testArrays.labels, test, { ...options, numClasses });
  if (testSet.sampleShape.join('x') !== trainSet.sampleShape.join('x')) {
    throw new Error(
      `E_IDX_SHAPE: ${test.images} holds samples of shape [${testSet.sampleShape.join(', ')}] but ${train.images} holds [${trainSet.sampleShape.join(', ')}]`,
    );
  }
  return { train: trainSet, test: testSet, files: { train, test } };
}
