/**
 * Per-class, count-weighted means of class rows (FedProto's global prototypes, FedHKD's global
 * hyper-knowledge): for class c with row r_{k,c} and count n_{k,c} from contributor k,
 *
 *   r̄_c = Σ_k n_{k,c} r_{k,c} / N_c,  N_c = Σ_k n_{k,c},
 *
 * the mean over every private sample of class c behind the uploads (Tan et al. 2022, FedProto,
 * eq. 7 weighs the holders' prototypes by |D_{k,c}|; Chen et al. 2023, FedHKD, weighs the local
 * hyper-knowledge the same way). A class nobody holds (N_c = 0) stays a row of zeros with count 0:
 * the target's counts say which classes are absent, as FD's class-logits target does. Summed in
 * float64 in contribution order; the rows must be [classes, width] row-major and every contribution
 * must carry labelCounts (protocol/knowledge.ts checks both for the class kinds).
 */
import type { Contribution } from './aggregator.js';

export interface ClassMeans {
  /** [classes, width] row-major: each class's count-weighted mean row, zeros where N_c = 0. */
  values: Float32Array;
  /** N_c per class: the private samples behind each row (0: nobody holds the class). */
  counts: number[];
}

export function classMeans(contributions: readonly Contribution[], classes: number, width: number): ClassMeans {
  const sum = new Float64Array(classes * width);
  const counts = new Array<number>(classes).fill(0);
  for (const { participant, values, labelCounts } of contributions) {
    if (labelCounts === undefined || labelCounts.length !== classes || values.length !== classes * width) {
      throw new Error(`class means: ${participant}'s contribution is not [${classes}, ${width}] with ${classes} label counts`);
    }
    for (let c = 0; c < classes; c++) {
      const n = labelCounts[c]!;
      if (n === 0) continue;
      counts[c]! += n;
      for (let j = c * width; j < (c + 1) * width; j++) sum[j]! += n * values[j]!;
    }
  }
  const values = new Float32Array(classes * width);
  for (let c = 0; c < classes; c++) {
    const n = counts[c]!;
    if (n === 0) continue;
    for (let j = c * width; j < (c + 1) * width; j++) values[j] = sum[j]! / n;
  }
  return { values, counts };
}
