/**
 * Order statistics in place on a reused float64 scratch, for the coordinate-wise robust
 * aggregators: no allocation per coordinate, average O(n) per selection.
 */

import { writeNormalisedRow } from './aggregator.js';

/** Below this many elements insertion sort beats partitioning. */
const INSERTION_SORT_BELOW = 16;

/**
 * Rearranges a[lo..hi] (inclusive) so that a[k] holds the value it would hold were a[lo..hi]
 * sorted, with every a[lo..k−1] ≤ a[k] ≤ every a[k+1..hi]. Quickselect (Hoare 1961) with a
 * median-of-three pivot and Hoare's partition, which splits runs of equal values evenly.
 * Values must not be NaN (the aggregators refuse NaN before they get here).
 */
export function selectInPlace(a: Float64Array, lo: number, hi: number, k: number): void {
  while (hi - lo >= INSERTION_SORT_BELOW) {
    const mid = (lo + hi) >>> 1;
    // Order a[lo] ≤ a[mid] ≤ a[hi]; the middle one is the pivot and the ends act as sentinels.
    if (a[mid]! < a[lo]!) swap(a, lo, mid);
    if (a[hi]! < a[lo]!) swap(a, lo, hi);
    if (a[hi]! < a[mid]!) swap(a, mid, hi);
    const pivot = a[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    // Now a[lo..j] ≤ pivot ≤ a[i..hi], and anything strictly between j and i equals the pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
  for (let i = lo + 1; i <= hi; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= lo && a[j]! > x) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}

/** The median of a[0..n−1]: the middle value, or the mean of the two middle values for even n. Reorders a. */
export function medianInPlace(a: Float64Array, n: number): number {
  const upper = n >>> 1;
  selectInPlace(a, 0, n - 1, upper);
  if (n % 2 === 1) return a[upper]!;
  // a[0..upper−1] are the lower half, so the lower middle value is their maximum.
  let lower = a[0]!;
  for (let i = 1; i < upper; i++) if (a[i]! > lower) lower = a[i]!;
  return (lower + a[upper]!) / 2;
}

/** The mean of a[0..n−1] after dropping its `trim` smallest and `trim` largest values (2·trim < n). Reorders a. */
export function trimmedMeanInPlace(a: Float64Array, n: number, trim: number): number {
  if (trim > 0) {
    selectInPlace(a, 0, n - 1, trim); // a[0..trim−1] are the `trim` smallest
    selectInPlace(a, trim, n - 1, n - 1 - trim); // a[n−trim..n−1] are the `trim` largest
  }
  let sum = 0;
  for (let i = trim; i < n - trim; i++) sum += a[i]!;
  return sum / (n - 2 * trim);
}

/**
 * A coordinate-wise statistic over the contributions (Yin et al. 2018's median and trimmed
 * mean): for every (row, class) the n participants' values are gathered into one reused
 * float64 column, reduced by `statistic`, and each row is then rescaled to sum to 1.
 */
export function coordinateWise(
  arrays: readonly Float32Array[],
  rows: number,
  classes: number,
  statistic: (column: Float64Array, n: number) => number,
): Float32Array {
  const n = arrays.length;
  const column = new Float64Array(n);
  const rowValues = new Float64Array(classes);
  const out = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < classes; c++) {
      const i = r * classes + c;
      for (let k = 0; k < n; k++) column[k] = arrays[k]![i]!;
      rowValues[c] = statistic(column, n);
    }
    writeNormalisedRow(out, r, rowValues, classes);
  }
  return out;
}
