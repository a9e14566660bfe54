/**
 * Labelled datasets as plain typed arrays: no tfjs here, so partitioning, splitting and the
 * tests that check them stay cheap. Tensors are made at the edge, where a model trains.
 */

/** Row-major features [n, ...sampleShape] with integer labels in [0, numClasses). */
export interface LabeledDataset {
  x: Float32Array;
  y: Int32Array;
  sampleShape: number[];
  numClasses: number;
}

export function datasetSize(d: LabeledDataset): number {
  return d.y.length;
}

/** Number of feature values per sample, e.g. 784 for [28, 28, 1]. */
export function sampleLength(d: LabeledDataset): number {
  return d.sampleShape.reduce((a, b) => a * b, 1);
}

/** The samples at `indices`, in that order, copied (the result shares no memory with `d`). */
export function subset(d: LabeledDataset, indices: ArrayLike<number>): LabeledDataset {
  const n = datasetSize(d);
  const len = sampleLength(d);
  const x = new Float32Array(indices.length * len);
  const y = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`E_INDEX: subset index ${i} at position ${k} is outside [0, ${n})`);
    }
    x.set(d.x.subarray(i * len, (i + 1) * len), k * len);
    y[k] = d.y[i]!;
  }
  return { x, y, sampleShape: [...d.sampleShape], numClasses: d.numClasses };
}

/** Samples per class, length numClasses. Throws on a label outside [0, numClasses). */
export function labelCounts(d: LabeledDataset): number[] {
  return countLabels(d.y, d.numClasses);
}

/** Class histogram of a label array; shared by datasets and partitions. */
export function countLabels(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new RangeError(`E_LABEL: label ${c} at index ${i} is outside [0, ${numClasses})`);
    }
    counts[c]!++;
  }
  return counts;
}
