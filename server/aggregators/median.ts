/**
 * Coordinate-wise median, then rows renormalised to the simplex.
 *
 *   m_rc = median_k p_k,rc       (for even n, the mean of the two middle values)
 *   p̄_rc = m_rc / Σ_c' m_rc'     (uniform 1/C if the medians of a row are all 0)
 *
 * Source: the coordinate-wise median of Yin et al. 2018, "Byzantine-Robust Distributed
 * Learning: Towards Optimal Statistical Rates", ICML (Definition 1, applied there to gradients;
 * here to each participant's probability of class c on reference sample r). A minority of
 * arbitrary (Byzantine) contributions can move each median only within the range of the honest
 * values. The paper aggregates unconstrained vectors; coordinate-wise medians of distributions
 * need not sum to 1 (three participants each sure of a different class give medians 0, 0, 0),
 * so — our step, not the paper's — each row is rescaled to sum 1, and falls back to uniform when
 * it sums to 0.
 */
import { withChecks, type AggregatorCore, type AggregatorDescriptor } from './aggregator.js';
import { coordinateWise, leaveOneOutMedians, medianInPlace } from './order-statistics.js';

export const medianCore: AggregatorCore = (_contributions, arrays, options) => coordinateWise(arrays, options.rows, options.classes, medianInPlace);

export const median = withChecks('median', medianCore);

export const medianAggregator = {
  name: 'median',
  aggregate: median,
  core: medianCore,
  plainMean: false,
  // One sort per coordinate serves all n targets, O(n log n), instead of n selections.
  leaveOneOut: (arrays, options) => leaveOneOutMedians(arrays, options.rows, options.classes),
  needsIndividualValues: true,
} as const satisfies AggregatorDescriptor;
