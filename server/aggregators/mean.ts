/**
 * Mean of probabilities: p̄ = (1/n) Σ_k p_k, per reference sample and class.
 *
 * The peer ensemble of deep mutual learning (Zhang et al. 2018, eq. 10 for K > 2 networks,
 * there over the *other* networks: see aggregateExcluding and leaveOneOutAggregates, which use
 * one float64 sum for all n targets). A mean of distributions is a distribution, so rows stay
 * on the simplex without renormalising.
 */
import { meanFromSum, meanOf } from './sums.js';
import { checkedSum, type Aggregator, type AggregatorCore, type AggregatorDescriptor } from './aggregator.js';

export const meanCore: AggregatorCore = (_contributions, arrays) => meanOf(arrays);

// The checks fused with the sum (checkedSum): one pass over the values, where checking and then
// summing took two; the mean is meanOf's, to the bit.
export const mean: Aggregator = (contributions, options) => {
  const { arrays, sum } = checkedSum('mean', contributions, options);
  return meanFromSum(sum, arrays.length);
};

export const meanAggregator = { name: 'mean', aggregate: mean, core: meanCore, plainMean: true, needsIndividualValues: false } as const satisfies AggregatorDescriptor;
