/**
 * The hot paths as they were before the performance work (commit 97b8367), copied verbatim
 * where they are small, so that each fix is measured against what it replaced in the same run:
 * on a shared machine, figures from two runs minutes apart differ by more than the fixes do.
 * Nothing outside bench/ uses these.
 */
import * as tf from '@tensorflow/tfjs';
import { temperedSoftmax } from '../client/losses/index.js';

// ---- server/aggregate.ts ------------------------------------------------------------------

/** sumOf before: one vector per pass over the float64 sum. */
export function legacySumOf(vectors: readonly Float32Array[]): Float64Array {
  const first = vectors[0];
  if (first === undefined) throw new Error('cannot aggregate zero vectors');
  const sum = new Float64Array(first.length);
  for (const v of vectors) {
    if (v.length !== sum.length) throw new Error(`cannot aggregate vectors of lengths ${sum.length} and ${v.length}`);
    for (let i = 0; i < v.length; i++) sum[i]! += v[i]!;
  }
  return sum;
}

export function legacyMeanOf(vectors: readonly Float32Array[]): Float32Array {
  const sum = legacySumOf(vectors);
  const mean = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) mean[i] = sum[i]! / vectors.length;
  return mean;
}

export function legacyLeaveOneOutMeans(vectors: readonly Float32Array[]): Float32Array[] {
  const n = vectors.length;
  const sum = legacySumOf(vectors);
  return vectors.map((own) => {
    const target = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) target[i] = (sum[i]! - own[i]!) / (n - 1);
    return target;
  });
}

// ---- protocol/tensor.ts, float32 ----------------------------------------------------------

function legacyFirstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/** packTensor's float32 path before: a compare per value, then a copy (little-endian host). */
export function legacyPackFloat32(values: Float32Array, shape: number[]): { dtype: 'float32'; shape: number[]; data: Uint8Array } {
  const bad = legacyFirstNonFinite(values);
  if (bad >= 0) throw new Error(`tensor value at index ${bad} is ${values[bad]}`);
  return { dtype: 'float32', shape: [...shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice() };
}

/** unpackTensor's float32 path before: copy into an aligned array, then a compare per value. */
export function legacyUnpackFloat32(data: Uint8Array, size: number): Float32Array {
  const out = new Float32Array(size);
  new Uint8Array(out.buffer).set(data);
  const bad = legacyFirstNonFinite(out);
  if (bad >= 0) throw new Error(`tensor value at index ${bad} is ${out[bad]}`);
  return out;
}

// ---- client/student.ts, predict -------------------------------------------------------------

/**
 * Student.predict before: model.predict in its default batches of 32 inside each 512-row batch,
 * and the values read inside the tf.tidy (which then walks them looking for tensors).
 */
export async function legacyPredict(model: tf.LayersModel, sampleShape: number[], numClasses: number, x: Float32Array, temperature: number): Promise<Float32Array> {
  const d = sampleShape.reduce((a, b) => a * b, 1);
  const count = x.length / d;
  const out = new Float32Array(count * numClasses);
  for (let start = 0; start < count; start += 512) {
    const rows = Math.min(512, count - start);
    const values = tf.tidy(() => {
      const batch = tf.tensor(x.subarray(start * d, (start + rows) * d), [rows, ...sampleShape]);
      return temperedSoftmax(model.predict(batch) as tf.Tensor2D, temperature).dataSync() as Float32Array;
    });
    out.set(values, start * numClasses);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return out;
}
