/**
 * readContribution checks soft predictions in one pass (isOnSimplex) instead of a finiteness scan
 * and then checkSimplex. Asserted here: on the same hostile inputs the fuzz test sends (NaN with
 * and without payloads, ±Inf, float16 Inf/NaN bits, uint8 min/scale that overflow, rows off the
 * simplex, logits, all zeros, values and sums on either side of the tolerance, and combinations
 * with a bad labelCounts), it accepts exactly what the two separate checks accept, returns the
 * same values to the bit, and refuses with the same code and the same message. The reference
 * below decodes values by itself (DataView, the binary16 formula) rather than through
 * protocol/tensor.ts, so a decoding slip would show too.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import {
  decodeTensorValues,
  isOnSimplex,
  packTensor,
  ProtocolError,
  readContribution,
  unpackTensor,
  type KnowledgeExpectation,
  type RawUpload,
  type WireDtype,
  type WireTensor,
} from '../../protocol/index.js';

const ROWS = 12;
const C = 5;
const EXPECTATION: KnowledgeExpectation = { kind: 'reference-predictions', round: 7, numClasses: C, rows: ROWS };

/** binary16 bits → value, from the format's definition. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The values a tensor carries, decoded without protocol/tensor.ts (its header already checked). */
function referenceValues(t: WireTensor): Float32Array {
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const size = t.shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, (_, i) => {
    if (t.dtype === 'float32') return view.getFloat32(4 * i, true);
    if (t.dtype === 'float16') return half(view.getUint16(2 * i, true));
    return t.min! + t.data[i]! * t.scale!;
  });
}

/** A row's sum tolerance: fixed by the dtype and the classes, never by the sender's scale (issue 15). */
function tolerance(t: WireTensor): number {
  if (t.dtype === 'float32') return 1e-3;
  if (t.dtype === 'float16') return 1e-3 + C * 2 ** -11;
  return 1e-3 + C / 510;
}
/** How far one probability may leave [0, 1], for every dtype. */
const VALUE_SLACK = 1e-3;

/**
 * readContribution for soft predictions as it was before the fused check: the tensor decoded and
 * scanned for NaN/±Inf (first bad index named), labelCounts checked, then every value in range and
 * every row summing to 1. Returns the values or the error message.
 */
function reference(upload: RawUpload): Float32Array | string {
  const what = `reference-predictions for round ${EXPECTATION.round}`;
  try {
    decodeTensorValues(upload.values, [ROWS, C]); // the header checks, unchanged: only their verdict is used
  } catch (error) {
    return `${(error as ProtocolError).code}: ${what}: ${(error as ProtocolError).toWire().message}`;
  }
  const t = upload.values;
  const top = t.dtype === 'uint8' ? t.min! + 255 * t.scale! : 0;
  if (t.dtype === 'uint8' && (t.min! < -VALUE_SLACK || top > 1 + VALUE_SLACK)) {
    return `E_VALUE: ${what}: uint8 quantisation min=${t.min}, scale=${t.scale} puts its levels in [${t.min}, ${top}]; soft predictions need them in [0, 1] ` +
      '(min ≥ 0 and min + 255·scale ≤ 1, so scale ≤ 1/255): quantise the probabilities themselves, as packTensor does';
  }
  const values = referenceValues(upload.values);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) return `E_VALUE: ${what}: tensor value at index ${bad} is ${values[bad]}; only finite values are accepted`;
  if (upload.labelCounts !== undefined && upload.labelCounts.length !== C) {
    return `E_SHAPE: ${what}: labelCounts has ${upload.labelCounts.length} entries; the session has ${C} classes`;
  }
  const tol = tolerance(upload.values);
  for (let r = 0; r < ROWS; r++) {
    let sum = 0;
    for (let k = 0; k < C; k++) {
      const p = values[r * C + k]!;
      if (!(p >= -VALUE_SLACK && p <= 1 + VALUE_SLACK)) return `E_VALUE: ${what}: row ${r}, class ${k} is ${p}; a probability lies in [0, 1] (±${VALUE_SLACK.toPrecision(2)})`;
      sum += p;
    }
    if (Math.abs(sum - 1) > tol) {
      return `E_VALUE: ${what}: row ${r} sums to ${sum.toFixed(6)}; a row of probabilities sums to 1 (±${tol.toPrecision(2)})`;
    }
  }
  return values;
}

function actual(upload: RawUpload): Float32Array | string {
  try {
    return readContribution('p', upload, EXPECTATION).values;
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).message;
  }
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function simplexRows(random: SeededRandom): Float32Array {
  const v = new Float32Array(ROWS * C);
  for (let r = 0; r < ROWS; r++) {
    let sum = 0;
    for (let k = 0; k < C; k++) sum += v[r * C + k] = 0.01 + random.next() * (random.next() < 0.2 ? 20 : 1);
    for (let k = 0; k < C; k++) v[r * C + k]! /= sum;
  }
  return v;
}

/** One hostile (or valid) upload; `kind` picks the damage. */
function hostileUpload(random: SeededRandom, kind: number): { label: string; upload: RawUpload } {
  const dtype: WireDtype = (['float32', 'float32', 'float16', 'uint8'] as const)[random.int(4)]!;
  const values = simplexRows(random);
  const row = random.int(ROWS);
  const at = row * C + random.int(C);
  // Some uploads carry labelCounts, a few of the wrong length (never the valid ones).
  const counts = random.next() < 0.3 ? (kind !== 0 && random.next() < 0.5 ? C + 1 : C) : 0;
  const extra: Partial<RawUpload> = counts > 0 ? { labelCounts: new Array<number>(counts).fill(2) } : {};
  const tol = dtype === 'float32' ? 1e-3 : dtype === 'float16' ? 1e-3 + C * 2 ** -11 : 0;
  const valueEdge = dtype === 'uint8' ? 0 : 1e-3;
  let tensor: WireTensor | undefined;
  let label: string;
  switch (kind) {
    case 0:
      label = 'valid';
      break;
    case 1: {
      label = 'NaN, ±Inf or a NaN with payload and sign in float32 bytes';
      const t = packTensor(values, [ROWS, C], 'float32');
      const data = new Uint8Array(t.data);
      const pattern = [[0, 0, 0xc0, 0x7f], [0, 0, 0x80, 0x7f], [0, 0, 0x80, 0xff], [0x01, 0, 0x80, 0xff]][random.int(4)]!;
      data.set(pattern, 4 * at);
      if (random.next() < 0.3) data.set(pattern, 4 * random.int(ROWS * C));
      tensor = { ...t, data };
      break;
    }
    case 2: {
      label = 'float16 Inf or NaN bits';
      const t = packTensor(values, [ROWS, C], 'float16');
      const data = new Uint8Array(t.data);
      const h = [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff][random.int(5)]!;
      data[2 * at] = h & 0xff;
      data[2 * at + 1] = h >>> 8;
      tensor = { ...t, data };
      break;
    }
    case 3: {
      label = 'uint8 min and scale that overflow float32';
      tensor = { ...packTensor(values, [ROWS, C], 'uint8'), min: random.next() < 0.5 ? 3e38 : -3e38, scale: 1e37 };
      break;
    }
    case 4:
      label = 'a negative probability';
      values[at] = -0.25 - random.next();
      break;
    case 5:
      label = 'a probability above 1';
      values[at] = 1.5;
      break;
    case 6:
      label = 'a row summing to 1.5';
      for (let k = 0; k < C; k++) values[row * C + k]! *= 1.5;
      break;
    case 7:
      label = 'logits';
      for (let i = 0; i < values.length; i++) values[i] = 10 * values[i]! - 3;
      break;
    case 8:
      label = 'all zero';
      values.fill(0);
      break;
    case 9: {
      label = 'a value just inside or outside the range';
      const edge = [-valueEdge, 1 + valueEdge][random.int(2)]!;
      const f = Math.fround(edge);
      const ulp = Math.abs(f) * 2 ** -23;
      values[at] = f + [-ulp, 0, ulp][random.int(3)]!;
      break;
    }
    case 10: {
      label = 'a row sum just inside or outside the tolerance';
      const shift = tol * (0.999 + random.next() * 0.002) * (random.next() < 0.5 ? -1 : 1);
      values[row * C] = values[row * C]! + shift;
      break;
    }
    case 11:
      label = 'signed zeros and subnormals on the simplex';
      values[row * C] = -0;
      values[row * C + 1] = values[row * C + 1]! + 1e-45;
      break;
    default: {
      label = 'a shape or byte count that does not match';
      const t = packTensor(values, [ROWS, C], dtype);
      tensor = random.next() < 0.5 ? { ...t, shape: [ROWS, C - 1] } : { ...t, data: t.data.subarray(0, t.data.length - 1) };
    }
  }
  tensor ??= packTensor(values, [ROWS, C], dtype);
  return { label, upload: { kind: 'reference-predictions', values: tensor, ...extra } };
}

describe('readContribution with the fused probability check', () => {
  it('accepts and refuses exactly as the finiteness scan then checkSimplex did, with the same values and messages', () => {
    const random = new SeededRandom(2026);
    const seen = new Map<string, { accepted: number; refused: number }>();
    for (let i = 0; i < 6_000; i++) {
      const { label, upload } = hostileUpload(random, i % 13);
      const expected = reference(upload);
      const got = actual(upload);
      const tally = seen.get(label) ?? { accepted: 0, refused: 0 };
      if (typeof expected === 'string') {
        expect(got, `${label} (#${i})`).toBe(expected);
        tally.refused++;
      } else {
        expect(typeof got, `${label} (#${i}): ${String(got)}`).not.toBe('string');
        expect(bits(got as Float32Array), `${label} (#${i})`).toEqual(bits(expected));
        tally.accepted++;
      }
      seen.set(label, tally);
    }
    // Every kind of input was really tried, and the boundary cases fell on both sides.
    expect(seen.size).toBe(13);
    expect(seen.get('valid')!.refused).toBe(0);
    for (const label of ['a value just inside or outside the range', 'a row sum just inside or outside the tolerance']) {
      expect(seen.get(label)!.accepted, label).toBeGreaterThan(0);
      expect(seen.get(label)!.refused, label).toBeGreaterThan(0);
    }
  });

  it('names a non-finite value before a bad labelCounts, and a bad labelCounts before a row off the simplex, as before', () => {
    const values = new Float32Array(ROWS * C).fill(1 / C);
    const nan = packTensor(values, [ROWS, C], 'float32');
    const data = new Uint8Array(nan.data);
    data.set([0, 0, 0xc0, 0x7f], 4 * 7);
    const wrongCounts = { labelCounts: [1, 2] };
    expect(actual({ kind: 'reference-predictions', values: { ...nan, data }, ...wrongCounts })).toBe(
      'E_VALUE: reference-predictions for round 7: tensor value at index 7 is NaN; only finite values are accepted',
    );
    const off = Float32Array.from(values, (v, i) => (i === 3 ? 0.9 : v));
    expect(actual({ kind: 'reference-predictions', values: packTensor(off, [ROWS, C], 'float32'), ...wrongCounts })).toBe(
      'E_SHAPE: reference-predictions for round 7: labelCounts has 2 entries; the session has 5 classes',
    );
    expect(actual({ kind: 'reference-predictions', values: packTensor(off, [ROWS, C], 'float32') })).toMatch(/^E_VALUE: reference-predictions for round 7: row 0 sums to 1\.700000/);
  });

  it('leaves the other kinds to unpackTensor, which still refuses NaN and ±Inf', () => {
    const values = new Float32Array(ROWS * C).fill(3);
    const t = packTensor(values, [ROWS, C], 'float32');
    const data = new Uint8Array(t.data);
    data.set([0, 0, 0x80, 0xff], 4 * 11);
    expect(() => readContribution('p', { kind: 'reference-logits', values: { ...t, data } }, { ...EXPECTATION, kind: 'reference-logits' })).toThrow(
      'E_VALUE: reference-logits for round 7: tensor value at index 11 is -Infinity; only finite values are accepted',
    );
  });
});

describe('isOnSimplex', () => {
  it('agrees with the value-by-value check on rows near every edge, narrow rows and wide (summed in four parts)', () => {
    const random = new SeededRandom(11);
    let accepted = 0;
    for (let trial = 0; trial < 20_000; trial++) {
      const classes = trial % 2 === 0 ? 1 + random.int(7) : 8 + random.int(126);
      const rows = random.int(4);
      // Powers of two too, so that float32 values can sit exactly on −tol, 1 + tol and |sum − 1| = tol.
      const tol = [1e-3, 1e-6, 0.05, 2 ** -10, 0.125][random.int(5)]!;
      const v = new Float32Array(rows * classes);
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < classes; k++) v[r * classes + k] = 1 / classes;
        const i = r * classes + random.int(classes);
        const choice = random.int(13);
        const base = r * classes;
        if (choice === 9) v[i] = -tol;
        else if (choice === 10) v[i] = 1 + tol;
        else if (choice === 11) v.fill(0, base, base + classes).set([1 + [tol, -tol][random.int(2)]!], i); // |sum − 1| = tol exactly
        else if (choice === 12 && classes >= 2) v.fill(0, base, base + classes).set([-tol, 1 + tol], base); // both ends of the range, sum 1
        else v[i] = v[i]! + [0, tol, -tol, tol * 0.999, tol * 1.001, -1 / classes - tol, Number.NaN, Infinity, -0][choice]!;
      }
      let expected = true;
      for (let r = 0; r < rows && expected; r++) {
        let sum = 0;
        for (let k = 0; k < classes; k++) {
          const p = v[r * classes + k]!;
          if (!(p >= -tol && p <= 1 + tol)) expected = false;
          sum += p;
        }
        if (Math.abs(sum - 1) > tol) expected = false;
      }
      expect(isOnSimplex(v, rows, classes, tol), `${Array.from(v)} tol ${tol}`).toBe(expected);
      if (expected) accepted++;
    }
    expect(accepted).toBeGreaterThan(2_000);
    expect(accepted).toBeLessThan(18_000);
  });
});

describe('decoding float16 without a branch per value', () => {
  it('decodes every half the way the format defines it, aligned or not, and refuses the first Inf or NaN by index', () => {
    const all = new Uint8Array(2 * 0x10000);
    for (let h = 0; h < 0x10000; h++) {
      all[2 * h] = h & 0xff;
      all[2 * h + 1] = h >>> 8;
    }
    const finite = Array.from({ length: 0x10000 }, (_, h) => h).filter((h) => ((h >>> 10) & 0x1f) !== 0x1f);
    const data = new Uint8Array(2 * finite.length);
    finite.forEach((h, i) => {
      data[2 * i] = h & 0xff;
      data[2 * i + 1] = h >>> 8;
    });
    for (const offset of [0, 1]) {
      const host = new Uint8Array(data.length + 2);
      host.set(data, offset);
      const t: WireTensor = { dtype: 'float16', shape: [finite.length], data: host.subarray(offset, offset + data.length) };
      const out = unpackTensor(t);
      finite.forEach((h, i) => expect(Object.is(out[i], Math.fround(half(h))), `half ${h.toString(16)}`).toBe(true));
    }
    const t: WireTensor = { dtype: 'float16', shape: [0x10000], data: all };
    expect(() => unpackTensor(t)).toThrow(`E_VALUE: tensor value at index ${0x7c00} is Infinity; only finite values are accepted`);
    const negative = all.subarray(2 * 0xfc00);
    expect(() => unpackTensor({ dtype: 'float16', shape: [negative.length / 2], data: negative })).toThrow(
      'E_VALUE: tensor value at index 0 is -Infinity; only finite values are accepted',
    );
  });
});
