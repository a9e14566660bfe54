/**
 * The receiving half of the upload path as it was at commit a04f524, before the fused
 * probability check, kept only so that bench/codec.ts can measure readContribution against it in
 * the same run: unpackTensor with its own finiteness scan (and, for float16, a branch per value),
 * then checkSimplex as a second pass. Copied from protocol/tensor.ts and protocol/knowledge.ts
 * of that commit; error messages shortened, since the benchmark feeds it valid uploads only.
 * Nothing outside bench/ uses it.
 */
import type { KnowledgeExpectation, RawUpload } from '../protocol/knowledge.js';
import type { WireDtype, WireTensor } from '../protocol/tensor.js';

const BYTES_PER_VALUE: Record<WireDtype, number> = { float32: 4, float16: 2, uint8: 1 };

function legacyFirstNonFinite(values: Float32Array): number {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  const length = bits.length;
  let start = 0;
  for (; start + 256 <= length; start += 256) {
    let a = 0;
    let b = 0;
    let c = 0;
    let d = 0;
    for (let i = start; i < start + 256; i += 4) {
      a |= (bits[i]! & 0x7f800000) + 0x00800000;
      b |= (bits[i + 1]! & 0x7f800000) + 0x00800000;
      c |= (bits[i + 2]! & 0x7f800000) + 0x00800000;
      d |= (bits[i + 3]! & 0x7f800000) + 0x00800000;
    }
    if ((a | b | c | d) < 0) break;
  }
  for (let i = start; i < length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

let table: Float32Array | undefined;
function float16Table(): Float32Array {
  if (table === undefined) {
    table = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >>> 10) & 0x1f;
      const m = h & 0x3ff;
      table[h] = e === 0 ? sign * m * 2 ** -24 : e === 0x1f ? (m !== 0 ? NaN : sign * Infinity) : sign * (1024 + m) * 2 ** (e - 25);
    }
  }
  return table;
}

/** unpackTensor before (little-endian host; the shape and byte-count checks kept, messages short). */
export function legacyUnpackTensor(t: WireTensor, expectedShape: readonly number[]): Float32Array {
  if (!t.shape.every((d, i) => d === expectedShape[i]) || t.shape.length !== expectedShape.length) throw new Error('E_SHAPE');
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.byteLength !== size * BYTES_PER_VALUE[t.dtype]) throw new Error('E_SHAPE');
  const out = new Float32Array(size);
  switch (t.dtype) {
    case 'float32':
      new Uint8Array(out.buffer).set(t.data);
      break;
    case 'float16': {
      const halves = new Uint16Array(size);
      new Uint8Array(halves.buffer).set(t.data);
      const lookup = float16Table();
      for (let i = 0; i < size; i++) {
        const h = halves[i]!;
        if ((h & 0x7c00) === 0x7c00) throw new Error(`E_VALUE: index ${i}`);
        out[i] = lookup[h]!;
      }
      return out;
    }
    case 'uint8': {
      const { min, scale } = t as { min: number; scale: number };
      if (!Number.isFinite(min) || !Number.isFinite(scale) || scale < 0) throw new Error('E_VALUE');
      const q = t.data;
      for (let i = 0; i < size; i++) out[i] = min + q[i]! * scale;
      break;
    }
  }
  const bad = legacyFirstNonFinite(out);
  if (bad >= 0) throw new Error(`E_VALUE: index ${bad}`);
  return out;
}

function simplexTolerance(dtype: WireDtype, numClasses: number, scale: number | undefined): number {
  switch (dtype) {
    case 'float32':
      return 1e-3;
    case 'float16':
      return 1e-3 + numClasses * 2 ** -11;
    case 'uint8':
      return 1e-3 + (numClasses * (scale ?? 0)) / 2;
  }
}

function legacyCheckSimplex(values: Float32Array, rows: number, numClasses: number, tolerance: number): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < numClasses; k++) {
      const p = values[r * numClasses + k]!;
      if (!(p >= -tolerance && p <= 1 + tolerance)) throw new Error(`E_VALUE: row ${r}, class ${k}`);
      sum += p;
    }
    if (Math.abs(sum - 1) > tolerance) throw new Error(`E_VALUE: row ${r} sums to ${sum}`);
  }
}

/** readContribution before, for reference-predictions: unpack (with its finiteness scan), then checkSimplex. */
export function legacyReadPredictions(upload: RawUpload, e: KnowledgeExpectation): Float32Array {
  const values = legacyUnpackTensor(upload.values, [e.rows, e.numClasses]);
  legacyCheckSimplex(values, e.rows, e.numClasses, simplexTolerance(upload.values.dtype, e.numClasses, upload.values.scale));
  return values;
}
