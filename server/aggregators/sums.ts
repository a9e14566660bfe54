/**
 * Aggregation math on typed arrays. Sums accumulate in float64 so that the leave-one-out
 * subtraction (sum − own) does not cancel away float32 precision; results are float32, the
 * precision they travel in.
 */

/** Element-wise sum of equally long vectors, in float64. */
export function sumOf(vectors: readonly Float32Array[]): Float64Array {
  const first = vectors[0];
  if (first === undefined) throw new Error('cannot aggregate zero vectors');
  const length = first.length;
  for (const v of vectors) {
    if (v.length !== length) throw new Error(`cannot aggregate vectors of lengths ${length} and ${v.length}`);
  }
  const sum = new Float64Array(length);
  // Four vectors per pass: a quarter of the float64 loads and stores, which bound the one-vector
  // loop (meanOf before and after: bench/RESULTS.md). Each element still adds the vectors one at
  // a time, in order, from 0: ((((s + a) + b) + c) + d) is bit for bit the one-vector-per-pass sum.
  let k = 0;
  for (; k + 4 <= vectors.length; k += 4) {
    const a = vectors[k]!;
    const b = vectors[k + 1]!;
    const c = vectors[k + 2]!;
    const d = vectors[k + 3]!;
    for (let i = 0; i < length; i++) sum[i] = sum[i]! + a[i]! + b[i]! + c[i]! + d[i]!;
  }
  for (; k < vectors.length; k++) {
    const v = vectors[k]!;
    for (let i = 0; i < length; i++) sum[i] = sum[i]! + v[i]!;
  }
  return sum;
}

/** The mean (1/n) Σ_j p_j: the full ensemble. */
export function meanOf(vectors: readonly Float32Array[]): Float32Array {
  return meanFromSum(sumOf(vectors), vectors.length);
}

/** sum / n, rounded to float32: meanOf once the sum is known (a caller that needs the sum for more than the mean sums once). */
export function meanFromSum(sum: Float64Array, n: number): Float32Array {
  const mean = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) mean[i] = sum[i]! / n;
  return mean;
}

/**
 * Leave-one-out means: for participant i, (1/(n−1)) Σ_{j≠i} p_j = (S − p_i)/(n − 1), the peer
 * ensemble of deep mutual learning (Zhang et al. 2018, eq. 10 for K > 2 networks). One sum
 * serves all n targets: O(n·P·C) rather than O(n²·P·C). Undefined for n < 2 (no peers).
 */
export function leaveOneOutMeans(vectors: readonly Float32Array[]): Float32Array[] {
  const n = vectors.length;
  if (n < 2) throw new Error(`a leave-one-out mean needs at least 2 participants; got ${n}`);
  return leaveOneOutFromSum(sumOf(vectors), vectors);
}

/** leaveOneOutMeans once S = sumOf(vectors) is known. */
export function leaveOneOutFromSum(sum: Float64Array, vectors: readonly Float32Array[]): Float32Array[] {
  const others = vectors.length - 1;
  return vectors.map((own) => {
    const target = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) target[i] = (sum[i]! - own[i]!) / others;
    return target;
  });
}

/**
 * Index of the first NaN or ±Infinity in a float64 sum of float32 vectors, or −1. Such a sum is
 * finite exactly when every value that went into it is: a NaN addend makes it NaN for good; a ±Inf
 * addend makes it ±Inf or (meeting the opposite infinity) NaN, and nothing finite brings either
 * back; and finite float32 addends cannot overflow float64 (|S| ≤ n · 2^128 < 2^1024 for any
 * n < 2^896). So scanning the sum, P·C values, checks all n·P·C inputs for finiteness.
 */
export function firstNonFiniteSum(sum: Float64Array): number {
  for (let i = 0; i < sum.length; i++) {
    const s = sum[i]!;
    if (s - s !== 0) return i;
  }
  return -1;
}
