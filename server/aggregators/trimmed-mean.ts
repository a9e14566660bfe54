/**
 * Coordinate-wise trimmed mean, then rows renormalised to the simplex.
 *
 *   t    = ⌊β · n⌋                                  values dropped on each side, 0 ≤ β < 1/2
 *   m_rc = mean of p_k,rc over k after dropping the t smallest and t largest of them
 *   p̄_rc = m_rc / Σ_c' m_rc'                        (uniform 1/C if a row sums to 0)
 *
 * Source: the coordinate-wise β-trimmed mean of Yin et al. 2018, "Byzantine-Robust Distributed
 * Learning: Towards Optimal Statistical Rates", ICML (Definition 2). The trimming is per
 * coordinate: a participant dropped as the largest for one class may count for another. The
 * paper writes βm as if it were an integer; we take ⌊β·n⌋ (with a 1e-9 allowance, so that
 * 0.29 · 100 counts as 29, not 28.999…). With t = 0 this is the mean. As for the median, the
 * row renormalisation is ours, not the paper's: trimming per coordinate breaks Σ_c = 1.
 * Default β = 0.1.
 */
import { withChecks, type AggregatorCore, type AggregatorDescriptor, type AggregatorOptions } from './aggregator.js';
import { coordinateWise, leaveOneOutTrimmedMeans, trimmedMeanInPlace } from './order-statistics.js';

export const TRIMMED_MEAN_DEFAULT_FRACTION = 0.1;

export const trimmedMeanCore: AggregatorCore = (_contributions, arrays, options) => {
  const trim = trimCount(options, arrays.length);
  return coordinateWise(arrays, options.rows, options.classes, (column, n) => trimmedMeanInPlace(column, n, trim));
};

export const trimmedMean = withChecks('trimmed-mean', trimmedMeanCore);

/** ⌊β · n⌋ for the configured β, checked to leave at least one value per coordinate. */
export function trimCount(options: AggregatorOptions, n: number): number {
  const fraction = options.trimFraction ?? TRIMMED_MEAN_DEFAULT_FRACTION;
  if (!(fraction >= 0 && fraction < 0.5)) {
    throw new Error(`trimmed-mean: trimFraction must lie in [0, 0.5) — the share dropped on each side; got ${fraction}`);
  }
  return trimmedPerSide(fraction, n);
}

/** How many of n values a fraction β trims on each side: ⌊β·n⌋, leaving at least one value. */
export function trimmedPerSide(fraction: number, n: number): number {
  // β < 1/2 gives 2t ≤ 2βn < n, except where the allowance rounds βn up to exactly n/2.
  return Math.min(Math.floor(fraction * n + 1e-9), Math.floor((n - 1) / 2));
}

export const trimmedMeanAggregator = {
  name: 'trimmed-mean',
  aggregate: trimmedMean,
  core: trimmedMeanCore,
  plainMean: false,
  // One sort per coordinate serves all n targets; each trims ⌊β(n − 1)⌋ of its n − 1 others.
  leaveOneOut: (arrays, options) => leaveOneOutTrimmedMeans(arrays, options.rows, options.classes, trimCount(options, arrays.length - 1)),
  needsIndividualValues: true,
  configProblems: ({ trimFraction, participants }) => {
    // A leave-one-out target combines the n − 1 others: a fraction that cuts none of them is the plain mean, silently.
    const fraction = trimFraction ?? TRIMMED_MEAN_DEFAULT_FRACTION;
    const others = participants - 1;
    if (others < 3 || trimmedPerSide(fraction, others) > 0) return [];
    return [
      `trimFraction ${fraction} trims ⌊${fraction} × ${others}⌋ = 0 of the ${others} other participants' values: the trimmed mean would be the plain mean; ` +
        `set trimFraction ≥ ${(Math.ceil((1 / others) * 1000) / 1000).toFixed(3)} (or use aggregator mean)`,
    ];
  },
} as const satisfies AggregatorDescriptor;
