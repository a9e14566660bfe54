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

/**
 * Every leave-one-out coordinate-wise median at once: for each participant k, the median over
 * the others, rows renormalised — the same values, bit for bit, as coordinateWise(medianInPlace)
 * run n times on the n − 1 others (but for the sign of a zero where a column's middle holds both
 * −0 and +0: quickselect returns either), in O(n log n) per coordinate instead of O(n²).
 *
 * Each column is sorted once. Leaving out participant k removes one copy of its value v from the
 * sorted column; which copy does not matter (equal values are the same number, and -0 is told
 * apart from +0 by Object.is), so the others' sorted column is the sorted column with position
 * rank(v) skipped, and its middle value(s) are read straight off.
 */
export function leaveOneOutMedians(arrays: readonly Float32Array[], rows: number, classes: number): Float32Array[] {
  const m = arrays.length - 1;
  const upper = m >>> 1;
  return leaveOneOutSorted(arrays, rows, classes, (sorted) => (rank) => {
    // The others' sorted column at position j is sorted[j] before the gap, sorted[j + 1] after it.
    const at = (j: number) => sorted[j < rank ? j : j + 1]!;
    return m % 2 === 1 ? at(upper) : (at(upper - 1) + at(upper)) / 2;
  });
}

/**
 * The skeleton of the sorted leave-one-out statistics: each coordinate's column of the n values
 * is sorted once, `statistic` prepares what it needs from it and answers, for the position of the
 * participant left out, the others' statistic; rows are then renormalised per participant.
 */
function leaveOneOutSorted(
  arrays: readonly Float32Array[],
  rows: number,
  classes: number,
  statistic: (sorted: Float64Array) => (rank: number) => number,
): Float32Array[] {
  const n = arrays.length;
  const sorted = new Float64Array(n);
  const rowValues = Array.from({ length: n }, () => new Float64Array(classes));
  const out = Array.from({ length: n }, () => new Float32Array(rows * classes));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < classes; c++) {
      const i = r * classes + c;
      for (let k = 0; k < n; k++) sorted[k] = arrays[k]![i]!;
      sorted.sort();
      const without = statistic(sorted);
      for (let k = 0; k < n; k++) rowValues[k]![c] = without(rankOf(sorted, arrays[k]![i]!));
    }
    for (let k = 0; k < n; k++) writeNormalisedRow(out[k]!, r, rowValues[k]!, classes);
  }
  return out;
}

/** A position of v in the ascending `sorted` holding exactly v (Object.is: -0 and +0 apart). */
function rankOf(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  while (!Object.is(sorted[lo], v)) lo++;
  return lo;
}

/**
 * Every leave-one-out coordinate-wise trimmed mean at once: for each participant k, the mean of
 * the others' values after dropping `trim` from each side (trim for n − 1 values), rows
 * renormalised — in O(n log n) per coordinate instead of O(n²).
 *
 * Each column is sorted once. Without participant k, whose value sits at position p of the sorted
 * column, the others' kept block is the full column's block sorted[trim .. m − trim] (m = n − 1,
 * one value more than is kept) minus one value: sorted[trim] if p < trim, sorted[m − trim] if
 * p > m − trim, else sorted[p] itself. So each target is (B − that value) / (m − 2·trim), with
 * B summed once in double-double (Knuth's two-sum) so that the subtraction loses nothing when
 * the removed value dwarfs the rest (a block of 1e-20s and one 0.99). The definition sums the
 * kept values in quickselect's order instead; the two agree to float64 rounding, so a float32
 * result may differ from it in its last bit (test/server/trimmed-leave-one-out.test.ts).
 */
export function leaveOneOutTrimmedMeans(arrays: readonly Float32Array[], rows: number, classes: number, trim: number): Float32Array[] {
  const n = arrays.length;
  const m = n - 1;
  const kept = m - 2 * trim;
  if (!(n >= 2 && trim >= 0 && kept >= 1)) throw new Error(`trimmed-mean: cannot keep ${kept} of the ${m} others' values with ${trim} trimmed on each side`);
  return leaveOneOutSorted(arrays, rows, classes, (sorted) => {
    let hi = 0;
    let lo = 0;
    for (let j = trim; j <= m - trim; j++) {
      const v = sorted[j]!;
      const s = hi + v;
      const back = s - hi;
      lo += hi - (s - back) + (v - back);
      hi = s;
    }
    return (p) => (hi - sorted[p < trim ? trim : p > m - trim ? m - trim : p]! + lo) / kept;
  });
}
