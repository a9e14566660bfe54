/**
 * Weight quantisation as tfjs-converter writes it, so that plain `tf.loadLayersModel`
 * dequantises at load (tfjs-core io_utils `decodeWeights`):
 *   float16: each float32 weight rounded to IEEE binary16 (round to nearest, ties to even),
 *            manifest entry `quantization: { dtype: 'float16' }`;
 *   uint8:   per-tensor affine, q = round((w − min) / scale), w ≈ q·scale + min, entry
 *            `quantization: { dtype: 'uint8', scale, min }`. As in tfjs-converter's
 *            quantization.py (_get_affine_quantization_range), the range is widened to hold 0 and
 *            min is nudged so that 0 is exactly representable (ReLU zeros and zero biases stay 0).
 * Only float32 weights are quantised; others are copied as they are.
 */
import type * as tf from '@tensorflow/tfjs';

export const QUANTIZATIONS = ['float16', 'uint8'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

type Spec = tf.io.WeightsManifestEntry;

/** Bytes a weight takes in the weight data, quantised or not. */
export function specByteLength(spec: Spec): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };
  const per = bytes[dtype];
  if (per === undefined) throw new Error(`weight ${spec.name}: dtype ${dtype} is not supported here`);
  return size * per;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE 754 binary16 bits, round to nearest even (as numpy's astype(float16)). */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0); // Inf, NaN
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa with its implicit 1 into place.
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let bits = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest === half && (bits & 1) === 1)) bits++;
    return sign | bits;
  }
  let bits = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and may reach Inf).
  if (rest > 0x1000 || (rest === 0x1000 && (bits & 1) === 1)) bits++;
  return sign | bits;
}

/** min and scale of the per-tensor affine uint8 code of `values` (tfjs-converter's nudged range). */
export function affineRange(values: Float32Array): { min: number; scale: number } {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = (hi - lo) / 255;
  // All zeros: any scale decodes 0 · scale + 0 = 0; 1 keeps the file valid.
  if (scale === 0) return { min: 0, scale: 1 };
  const zeroPoint = Math.round(Math.min(255, Math.max(0, -lo / scale)));
  return { min: -zeroPoint * scale, scale };
}

/**
 * Quantises every float32 weight of (specs, data); data holds float32/int32 weights in spec
 * order, unquantised. Returns the new specs and weight data.
 */
export function quantizeWeights(specs: readonly Spec[], data: ArrayBuffer, to: Quantization): { specs: Spec[]; data: ArrayBuffer } {
  const parts: Uint8Array[] = [];
  const out: Spec[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization !== undefined) throw new Error(`weight ${spec.name} is already quantised (${spec.quantization.dtype}); export from the float32 model`);
    const length = specByteLength(spec);
    const bytes = new Uint8Array(data.slice(offset, offset + length));
    offset += length;
    if (spec.dtype !== 'float32') {
      parts.push(bytes);
      out.push({ ...spec });
      continue;
    }
    const values = new Float32Array(bytes.buffer);
    if (to === 'float16') {
      const half = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) half[i] = toFloat16Bits(values[i]!);
      parts.push(new Uint8Array(half.buffer));
      out.push({ ...spec, quantization: { dtype: 'float16' } });
    } else {
      const { min, scale } = affineRange(values);
      const q = new Uint8Array(values.length);
      for (let i = 0; i < values.length; i++) q[i] = Math.min(255, Math.max(0, Math.round((values[i]! - min) / scale)));
      parts.push(q);
      out.push({ ...spec, quantization: { dtype: 'uint8', scale, min } });
    }
  }
  if (offset !== data.byteLength) throw new Error(`weight data holds ${data.byteLength} bytes; the specs describe ${offset}`);
  const joined = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.byteLength;
  }
  return { specs: out, data: joined.buffer };
}
